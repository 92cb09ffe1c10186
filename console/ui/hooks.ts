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

/** Calls `load` now, whenever `key` changes, and every REFRESH_MS while mounted. */
export function useLoad<T>(load: () => Promise<T>, key: string): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const latest = useRef(load);
  latest.current = load;
  const run = useCallback(() => {
    latest.current().then(
      (value) => {
        setData(value);
        setError(undefined);
      },
      (err: Error) => setError(err.message),
    );
  }, []);
  useEffect(() => {
    setData(undefined);
    run();
    const timer = setInterval(run, REFRESH_MS);
    return () => clearInterval(timer);
  }, [key, run]);
  return { data, error, reload: run, replace: setData };
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
