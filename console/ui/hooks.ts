/** Loading what a view shows, and keeping it fresh while the view is open (a rollout can be watched). */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { REFRESH_MS } from './refresh.ts';

export interface Loaded<T> {
  readonly data: T | undefined;
  readonly error: string | undefined;
  /** Loads again now (after an action changed what is shown). */
  reload(): void;
  /** Shows `value` at once: the answer of an action that returned the new state. */
  replace(value: T): void;
}

/**
 * Calls `load` now, whenever `key` changes, and every REFRESH_MS while mounted. Answers are shown
 * in the order asked: one that arrives after a later one, or after `key` changed (a slow answer
 * about the product shown before), is dropped.
 */
export function useLoad<T>(load: () => Promise<T>, key: string): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const latest = useRef(load);
  latest.current = load;
  /** Requests asked so far, the latest whose answer is shown, and the first asked for this key. */
  const order = useRef({ asked: 0, shown: 0, keyStart: 0 });
  const run = useCallback(() => {
    const n = ++order.current.asked;
    const current = () => n >= order.current.keyStart && n > order.current.shown;
    latest.current().then(
      (value) => {
        if (!current()) return;
        order.current.shown = n;
        setData(value);
        setError(undefined);
      },
      (err: Error) => {
        if (current()) setError(err.message);
      },
    );
  }, []);
  useEffect(() => {
    order.current.keyStart = order.current.asked + 1;
    setData(undefined);
    run();
    const timer = setInterval(run, REFRESH_MS);
    return () => clearInterval(timer);
  }, [key, run]);
  const replace = useCallback((value: T) => {
    order.current.shown = order.current.asked; // answers asked before this one are older
    setData(value);
  }, []);
  return { data, error, reload: run, replace };
}

/** The part of the URL after `#`, kept in state: the views are addressed by hash. */
export function useHashRoute(): string {
  const [hash, setHash] = useState(location.hash.slice(1) || '/');
  useEffect(() => {
    const onChange = () => setHash(location.hash.slice(1) || '/');
    addEventListener('hashchange', onChange);
    // A move made between the first render and this effect fired no event this listener heard.
    onChange();
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return hash;
}

/** Runs one action at a time: busy while it runs, its failure as one line. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const run = <T>(action: () => Promise<T>, done: (value: T) => void) => {
    setBusy(true);
    setError(undefined);
    action().then(
      (value) => {
        setBusy(false);
        done(value);
      },
      (err: Error) => {
        setBusy(false);
        setError(err.message);
      },
    );
  };
  return { busy, error, run };
}

export type Action = ReturnType<typeof useAction>;
