/** How often open views reload what they show (a rollout can be watched); tests wait on it. */
export const REFRESH_MS = 5000;
