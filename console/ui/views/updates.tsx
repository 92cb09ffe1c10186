/** The updates of a product: a table with status, phase, policy, limits and progress; each opens its detail. */
import { productStats } from '../api/fleet.ts';
import { listUpdates } from '../api/updates.ts';
import { ErrorLine, RolloutProgress } from '../components.tsx';
import { limits, phaseText, policyText, status } from '../format.ts';
import { useLoad } from '../hooks.ts';

export function Updates({ cloud, product }: { cloud: string; product: string }) {
  const { data: updates, error } = useLoad(() => listUpdates(cloud, product), `${cloud}/${product}`);
  // For the progress bars' goal when an update has no limit: the devices it can reach.
  const { data: stats } = useLoad(
    () => productStats(cloud, product, { days: 1, hours: 1 }),
    `${cloud}/${product}`,
  );
  const eligible = (id: string) => stats?.updates.find((u) => u.id === id)?.eligible;
  return (
    <section aria-labelledby="updates-title">
      <h2 id="updates-title">Updates of {product}</h2>
      <ErrorLine message={error} />
      {updates && updates.length === 0 && (
        <p>
          No updates yet: <a href="#/publish">publish one</a>.
        </p>
      )}
      {updates && updates.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Status</th>
              <th scope="col">Phase</th>
              <th scope="col">Policy</th>
              <th scope="col">Limits</th>
              <th scope="col">Progress</th>
            </tr>
          </thead>
          <tbody>
            {updates.map((u) => (
              <tr key={u.id}>
                <th scope="row">
                  <a href={`#/updates/${encodeURIComponent(u.version)}`}>{u.version}</a>
                </th>
                <td>{status(u)}</td>
                <td>{phaseText(u) ?? '—'}</td>
                <td>
                  <code>{policyText(u)}</code>
                </td>
                <td>{limits(u)}</td>
                <td>
                  <RolloutProgress
                    label={`Progress of ${u.version}`}
                    counters={u.counters}
                    limit={u.limit}
                    eligible={eligible(u.id)}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
