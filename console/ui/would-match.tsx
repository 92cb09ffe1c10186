/**
 * "Would match N of M devices": the publish form's dry run of the policy over the product's
 * registry, run shortly after typing stops (typing is never held up; the latest question wins and
 * one scan runs at a time). The
 * server's scan is bounded (admin/policy-check.ts): a cut scan is labelled as such and can be
 * taken further, each step resuming where the last stopped.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { FleetMatch } from '../api-types.ts';
import { matchPolicy } from './api/devices.ts';
import { ApiError } from './api/http.ts';
import { newVersionOf } from './policy-field.tsx';

const MATCH_DELAY_MS = 500;

/** The scan so far: counts summed over the steps taken, the cursor of the last. */
interface Tally {
  readonly matched: number;
  readonly scanned: number;
  readonly errors: number;
  readonly complete: boolean;
  readonly next?: string | undefined;
  readonly cutBy?: FleetMatch['cutBy'];
}

type MatchState =
  | { kind: 'idle' }
  | { kind: 'counting'; tally?: Tally }
  | { kind: 'done'; tally: Tally }
  /** The policy does not compile: its column is shown by the policy's own check. */
  | { kind: 'invalid' }
  | { kind: 'failed'; message: string };

function add(tally: Tally | undefined, fleet: FleetMatch): Tally {
  return {
    matched: (tally?.matched ?? 0) + fleet.matched,
    scanned: (tally?.scanned ?? 0) + fleet.scanned,
    errors: (tally?.errors ?? 0) + fleet.errors,
    complete: fleet.complete,
    next: fleet.next,
    cutBy: fleet.cutBy,
  };
}

function useFleetMatch(cloud: string, product: string, policy: string, version: string) {
  const [state, setState] = useState<MatchState>({ kind: 'idle' });
  /** Each new question gets a number; an answer to an older one is dropped. */
  const asked = useRef(0);
  const newVersion = newVersionOf(version);

  /**
   * One scan at a time per form: a question asked while one runs waits for it and only the latest
   * waiting one is sent (a scan may read for seconds; typing must not pile them up on the server).
   */
  const running = useRef(false);
  const waiting = useRef<(() => Promise<void>) | undefined>(undefined);
  const send = (scan: () => Promise<void>) => {
    if (running.current) {
      waiting.current = scan;
      return;
    }
    running.current = true;
    scan().finally(() => {
      running.current = false;
      const next = waiting.current;
      waiting.current = undefined;
      if (next) send(next);
    });
  };

  const ask = (tally?: Tally) => {
    const question = ++asked.current;
    setState({ kind: 'counting', ...(tally ? { tally } : {}) });
    send(() =>
      matchPolicy(cloud, product, policy, newVersion, tally?.next).then(
        (result) => {
          if (question !== asked.current || !result.fleet) return;
          setState({ kind: 'done', tally: add(tally, result.fleet) });
        },
        (err: Error) => {
          if (question !== asked.current) return;
          const invalidPolicy = err instanceof ApiError && err.column !== undefined;
          setState(invalidPolicy ? { kind: 'invalid' } : { kind: 'failed', message: err.message });
        },
      ),
    );
  };

  useEffect(() => {
    asked.current++;
    if (product.trim() === '') {
      setState({ kind: 'idle' });
      return;
    }
    const timer = setTimeout(() => ask(), MATCH_DELAY_MS);
    return () => clearTimeout(timer);
    // `ask` reads these same values; a new closure each render needs no dependency of its own.
  }, [cloud, product, policy, newVersion]);

  return { state, scanFurther: (tally: Tally) => ask(tally) };
}

const count = (n: number) => n.toLocaleString();

function TallyText({ tally, product }: { tally: Tally; product: string }) {
  const errors =
    tally.errors > 0 ? ` ${count(tally.errors)} could not be evaluated and count as not matching.` : '';
  if (tally.complete)
    return (
      <p>
        Would match <strong>{count(tally.matched)}</strong> of {count(tally.scanned)} devices of {product}.
        {errors}
      </p>
    );
  const share = tally.scanned > 0 ? Math.round((100 * tally.matched) / tally.scanned) : 0;
  return (
    <p>
      Would match at least <strong>{count(tally.matched)}</strong> of the first {count(tally.scanned)} devices
      of {product} read ({share}% of those).{errors}{' '}
      <span class="warning">
        Bounded scan: stopped after {tally.cutBy === 'time' ? '5 seconds' : `${count(tally.scanned)} devices`}
        ; the registry holds more.
      </span>
    </p>
  );
}

export function WouldMatch({
  id,
  cloud,
  product,
  policy,
  version,
}: {
  /** The status line's id, for the policy field's aria-describedby. */
  id: string;
  cloud: string;
  product: string;
  policy: string;
  version: string;
}) {
  const { state, scanFurther } = useFleetMatch(cloud, product, policy, version);
  const tally = state.kind === 'done' || state.kind === 'counting' ? state.tally : undefined;
  const defaultWithoutVersion = policy.trim() === '' && newVersionOf(version) === undefined;
  return (
    <div class="would-match">
      <div id={id} role="status" aria-live="polite" aria-busy={state.kind === 'counting'}>
        {state.kind === 'counting' && !tally && <p>Counting the devices this policy would match…</p>}
        {tally && <TallyText tally={tally} product={product} />}
        {defaultWithoutVersion && tally && (
          <p class="hint">The default policy compares each device with the version: enter it first.</p>
        )}
        {state.kind === 'invalid' && <p class="hint">Would match: fix the policy to count its devices.</p>}
        {state.kind === 'failed' && <p class="error">Would match: {state.message}</p>}
      </div>
      {tally && !tally.complete && (
        <button type="button" disabled={state.kind === 'counting'} onClick={() => scanFurther(tally)}>
          Scan further
        </button>
      )}
    </div>
  );
}
