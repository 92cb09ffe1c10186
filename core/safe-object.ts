/**
 * Objects that policies read without an own-property check on every access. Kept apart from the
 * policy engine so that modules which only build contexts (core/version.ts, used by the device
 * agent too) do not pull the parser and its dependencies in with them.
 */
/**
 * Marks objects made by {@link safeObject}: their prototype is frozen, has no prototype itself and no
 * string keys, so every string-keyed property found on them is their own and `Object.hasOwn` can be
 * skipped. Any other object is read with `Object.hasOwn`.
 */
export const OWN_ONLY = Symbol('policy.ownOnly');
const SAFE_PROTOTYPE: object = Object.freeze(Object.create(null, { [OWN_ONLY]: { value: true } }));

/** A copy of a JSON-like object (nested objects too) that policies read without own-property checks. */
export function safeObject(source: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out = Object.create(SAFE_PROTOTYPE) as Record<string, unknown>;
  for (const key of Object.keys(source)) {
    const v = source[key];
    out[key] =
      v !== null && typeof v === 'object' && !Array.isArray(v) ? safeObject(v as Record<string, unknown>) : v;
  }
  return out;
}
