/**
 * What builders see of their fleet, on real dynalite (issue 13, items 2, 3, 5): failures grouped
 * by reason as reports arrive, the paginated device list, one device's history, and the bounded
 * dry run.
 */
import { describe, expect, it } from 'vitest';
import { checkPolicy, InvalidInputError, listDevices, showDevice, updateFailures } from '#admin/index.ts';
import { Table } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';
import { reasonShard } from '#functions/report-ledger.ts';
import { checkin, report, seedUpdate, type TestCloud, useTestCloud } from '#test/support/cloud.ts';

let cloud: TestCloud;

const freshProduct = useTestCloud('fleet', (started) => (cloud = started));

describe('failure reasons (13.2)', () => {
  it('groups failures by error with counts and latest devices; a device that then succeeds leaves its group', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    const errors: Record<string, string | undefined> = {
      a: 'disk full',
      b: 'disk full',
      c: 'disk full',
      d: 'bad signature',
      e: undefined,
    };
    for (const [id, error] of Object.entries(errors)) {
      expect((await checkin(cloud, { id, product: p.name, version: '1.0.0' }, p.token)).json.update).toBe(
        update.id,
      );
      const body = { id, update: update.id, success: false, ...(error ? { error } : {}) };
      expect((await report(cloud, body, p.token)).status).toBe(200);
    }
    // The same failure again changes nothing.
    await report(cloud, { id: 'a', update: update.id, success: false, error: 'disk full' }, p.token);
    const selector = { product: p.name, version: '2.0.0' };
    const before = await updateFailures({ table: cloud.table }, selector);
    expect(before.reasons.map((r) => [r.error, r.devices])).toEqual([
      ['disk full', 3],
      ['', 1], // ties: the latest failure first
      ['bad signature', 1],
    ]);
    expect(before.reasons[0]?.latest.map((d) => d.id).sort()).toEqual(['a', 'b', 'c']);
    // The count above is summed over shards: these devices count in different ones.
    expect(new Set(['a', 'b', 'c'].map(reasonShard)).size).toBeGreaterThan(1);

    expect((await report(cloud, { id: 'b', update: update.id, success: true }, p.token)).status).toBe(200);
    const after = await updateFailures({ table: cloud.table }, selector);
    expect(after.reasons[0]).toMatchObject({ error: 'disk full', devices: 2 });
    expect(after.reasons[0]?.latest.map((d) => d.id).sort()).toEqual(['a', 'c']);
    expect(after.update.counters).toMatchObject({ success: 1, failure: 4 });
  });
});

/** Registry entries written through the store adapter, as checkins would leave them. */
function seedDevices(
  product: string,
  ids: readonly string[],
  version = '1.0.0',
  props = (_i: number) => ({}),
) {
  const lastSeen = new Date().toISOString();
  return cloud.table.putMany(
    ids.map((id, i) => ({
      ...keys.device(product, id),
      version,
      lastSeen,
      properties: JSON.stringify({ id, product, version, ...props(i) }),
    })),
  );
}

const ids = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`);

describe('device list (13.3)', () => {
  it('pages visit every device exactly once while devices are being added', async () => {
    const p = await freshProduct();
    const existing = ids('d', 300);
    await seedDevices(p.name, existing);
    const added = ids('n', 200).map((id, i) => (i % 2 ? id : `a${id}`)); // before and after the walk's position
    const adding = (async () => {
      for (let i = 0; i < added.length; i += 10) await seedDevices(p.name, added.slice(i, i + 10));
    })();
    const seen: string[] = [];
    let next: string | undefined;
    let pages = 0;
    do {
      const page = await listDevices(
        { table: cloud.table },
        { product: p.name, limit: 37, ...(next ? { next } : {}) },
      );
      seen.push(...page.devices.map((d) => d.id));
      next = page.next;
      pages++;
    } while (next);
    await adding;
    expect(pages).toBeGreaterThan(8);
    expect(new Set(seen).size).toBe(seen.length); // none twice
    for (const id of existing) expect(seen).toContain(id);
    expect(seen).toEqual([...seen].sort()); // in id order
  });

  it('filters by version and by a policy, a filtered page still ending with a cursor', async () => {
    const p = await freshProduct();
    await seedDevices(p.name, ids('e', 60), '1.0.0', (i) => ({ region: i % 3 === 0 ? 'eu' : 'us' }));
    await seedDevices(p.name, ids('f', 10), '1.1.0', () => ({ region: 'eu' }));
    const all = async (query: { where?: string; version?: string }) => {
      const found: string[] = [];
      let next: string | undefined;
      do {
        const page = await listDevices(
          { table: cloud.table },
          { product: p.name, limit: 8, ...query, ...(next ? { next } : {}) },
        );
        expect(page.devices.length).toBeLessThanOrEqual(8);
        found.push(...page.devices.map((d) => d.id));
        next = page.next;
      } while (next);
      return found;
    };
    expect(await all({ version: '1.1.0' })).toEqual(ids('f', 10));
    const eu = await all({ where: 'region == "eu" && semver(version, "<", "1.1.0")' });
    expect(eu).toEqual(ids('e', 60).filter((_, i) => i % 3 === 0));
    const first = await listDevices(
      { table: cloud.table },
      { product: p.name, where: 'region == "eu"', limit: 5 },
    );
    expect(first.devices).toHaveLength(5);
    expect(first.next).toBeDefined();
    expect(first.scanned).toBe(13); // e0000 … e0012: the fifth match is the thirteenth entry
  });

  it('reads a filtered page in few queries, whatever its page size (a rare filter on ?limit=1)', async () => {
    const p = await freshProduct();
    await seedDevices(p.name, ids('q', 1200));
    let queries = 0;
    const counted = new Table({
      tableName: cloud.table.name,
      region: 'local', // unused: the client below sends every request
      client: {
        send: (operation, input, options) => {
          if (operation === 'Query') queries++;
          return cloud.table.client.send(operation, input, options);
        },
        destroy: () => {},
      },
    });
    for (const filter of [{ version: '9.9.9' }, { where: 'region == "nowhere"' }]) {
      queries = 0;
      const page = await listDevices({ table: counted }, { product: p.name, limit: 1, ...filter });
      expect(page.devices).toEqual([]);
      expect(page.scanned).toBe(1200);
      // One read of the page size, then reads of up to 1,000 entries: not one query per entry.
      expect(queries, JSON.stringify(filter)).toBeLessThanOrEqual(3);
    }
  });

  it('searches by id prefix: the walk seeks to the prefix and ends after its last id', async () => {
    const p = await freshProduct();
    await seedDevices(p.name, ['a9', 'ab', 'ab-1', 'ab-2', 'ab.3', 'abc', 'ac', 'b'], '1.0.0', (i) => ({
      region: i % 2 === 0 ? 'eu' : 'us',
    }));
    const list = (query: { idPrefix: string; where?: string; limit?: number; next?: string }) =>
      listDevices({ table: cloud.table }, { product: p.name, ...query });
    const all = await list({ idPrefix: 'ab' });
    expect(all.devices.map((d) => d.id)).toEqual(['ab', 'ab-1', 'ab-2', 'ab.3', 'abc']);
    // Seeks to the prefix ("a9" is never examined) and stops at "ac", the first id past it.
    expect(all.scanned).toBe(6);
    expect(all.next).toBeUndefined();
    const first = await list({ idPrefix: 'ab', limit: 2 });
    expect(first.devices.map((d) => d.id)).toEqual(['ab', 'ab-1']);
    const rest = await list({ idPrefix: 'ab', limit: 10, next: first.next ?? '' });
    expect(rest.devices.map((d) => d.id)).toEqual(['ab-2', 'ab.3', 'abc']);
    const eu = await list({ idPrefix: 'ab', where: 'region == "eu"' });
    expect(eu.devices.map((d) => d.id)).toEqual(['ab-1', 'ab.3']);
    expect((await list({ idPrefix: 'zz' })).devices).toEqual([]);
    await expect(list({ idPrefix: 'a b' })).rejects.toThrow(
      /^Invalid --id-prefix "a b": use 1–128 characters of A-Z a-z 0-9 \. _ : -$/,
    );
  });

  it('refuses a bad cursor in one line', async () => {
    const p = await freshProduct();
    await seedDevices(p.name, ids('g', 3));
    const page = await listDevices({ table: cloud.table }, { product: p.name, limit: 2 });
    const other = await freshProduct();
    for (const next of ['not a cursor', 'eyJhIjoxfQ', page.next ?? '']) {
      const product = next === page.next ? other.name : p.name;
      const refused = listDevices({ table: cloud.table }, { product, next });
      await expect(refused).rejects.toBeInstanceOf(InvalidInputError);
      await expect(refused).rejects.toThrow(
        /^Invalid --next cursor "[^\n]*": pass the cursor a previous page printed/,
      );
    }
  });

  it('shows a device: properties, offered, reports with times and the error sent, and its last outcome', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    const dev = { id: 'h1', product: p.name, version: '1.0.0', region: 'eu' };
    expect((await checkin(cloud, dev, p.token)).json.update).toBe(update.id);
    await cloud.flush();
    const send = (status: string, success: boolean, error?: string) =>
      report(cloud, { id: 'h1', update: update.id, status, success, ...(error ? { error } : {}) }, p.token);
    expect((await send('downloaded', true)).status).toBe(200);
    expect((await send('failed', false, 'script exited 3')).status).toBe(200);
    const detail = await showDevice({ table: cloud.table }, { product: p.name, id: 'h1' });
    expect(detail).toMatchObject({ id: 'h1', version: '1.0.0', properties: { region: 'eu' } });
    expect(detail.history).toHaveLength(1);
    const [h] = detail.history;
    expect(h).toMatchObject({ update: update.id, version: '2.0.0', outcome: 'failure' });
    expect(h?.reports.map((r) => [r.status, r.error])).toEqual([
      ['downloaded', undefined],
      ['failed', 'script exited 3'],
    ]);
    expect(Date.parse(h?.offered ?? '')).toBeLessThanOrEqual(Date.parse(h?.reports[0]?.at ?? ''));
    const [listed] = (await listDevices({ table: cloud.table }, { product: p.name })).devices;
    expect(listed?.lastUpdate).toMatchObject({ update: update.id, version: '2.0.0', outcome: 'failure' });
    await expect(showDevice({ table: cloud.table }, { product: p.name, id: 'nope' })).rejects.toThrow(
      `No device "nope" in the registry of ${p.name}`,
    );
  });
});

describe('dry run over a large registry (13.5)', () => {
  it('scans in pages with progress, and a scan cut by its time bound resumes where it stopped', async () => {
    const p = await freshProduct();
    await seedDevices(p.name, ids('k', 2500), '1.0.0', (i) => ({ region: i % 4 === 0 ? 'eu' : 'us' }));
    const open = async () => ({ table: cloud.table });
    const progress: number[] = [];
    const whole = await checkPolicy(
      { policy: 'region == "eu"', product: p.name, scan: { onProgress: (n) => progress.push(n) } },
      open,
    );
    expect(whole.fleet).toMatchObject({ scanned: 2500, matched: 625, complete: true });
    expect(progress).toEqual([1000, 2000, 2500]);

    const cut = await checkPolicy({ policy: 'region == "eu"', product: p.name, scan: { maxMs: 0 } }, open);
    expect(cut.fleet).toMatchObject({ scanned: 1000, matched: 250, complete: false, cutBy: 'time' });
    const rest = await checkPolicy(
      { policy: 'region == "eu"', product: p.name, scan: { next: cut.fleet?.next ?? '' } },
      open,
    );
    expect(rest.fleet).toMatchObject({ scanned: 1500, matched: 375, complete: true });
  });
});
