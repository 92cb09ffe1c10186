/**
 * The apply step's side effect: the `device:update` listeners (contract in agent.ts), then
 * `scripts.update` (contract in apply.ts). Its process is recorded in the pending apply record
 * before it runs, so a restart can wait for it.
 */
import { runUpdateScript } from './apply.ts';
import type { AgentCore } from './core.ts';
import { ApplyError, errorLine } from './errors.ts';
import { identify } from './proc.ts';
import type { ApplyAction } from './script-output.ts';
import type { ApplyRecord, Offer } from './state.ts';
import type { ApplyResult, DeviceUpdateEvent } from './types.ts';

/** Applies the verified image at `path`; resolves with what the update asked of the agent. */
export async function applyImage(
  core: AgentCore,
  offer: Offer,
  path: string,
  apply: ApplyRecord,
  signal: AbortSignal,
): Promise<ApplyAction | undefined> {
  const event: DeviceUpdateEvent = {
    path,
    version: offer.version,
    update: offer.update,
    checksum: offer.checksum,
    size: offer.size,
  };
  let applied = false;
  let action: ApplyAction | undefined;
  for (const listener of core.events.updateListeners()) {
    let answer: ApplyResult | undefined;
    try {
      answer = await listener(event);
    } catch (err) {
      throw new ApplyError(`device:update listener failed: ${errorLine(err)}`, { cause: err });
    }
    if (answer === undefined) continue;
    if (!answer.applied)
      throw new ApplyError(answer.error ?? 'device:update listener did not apply the update');
    applied = true;
    action = answer.action ?? action;
  }
  const script = core.config.updateScript;
  if (script) {
    const scriptAction = await runUpdateScript({
      script,
      args: [path],
      env: scriptEnv(core, offer, path),
      timeoutMs: core.config.applyTimeout * 1000,
      signal,
      // On disk before the script can get far: a restart then waits for this very process group.
      onSpawn: (pid) =>
        core.patch({ apply: { ...apply, script: { ...identify(pid), startedAt: core.now() } } }),
      onLine: (line, stream) => core.log.debug(`update script ${stream}: ${line}`),
      // Files, not pipes: a script must outlive a killed agent to the end of its work.
      output: core.scriptOutput,
    });
    applied = true;
    action = scriptAction ?? action;
  }
  if (!applied) {
    throw new ApplyError('Nothing applied the update: set scripts.update or handle the device:update event');
  }
  return action;
}

function scriptEnv(core: AgentCore, offer: Offer, path: string): Record<string, string> {
  return {
    UPDATE_PATH: path,
    UPDATE_VERSION: offer.version,
    UPDATE_ID: offer.update,
    UPDATE_CHECKSUM: offer.checksum,
    UPDATE_SIZE: String(offer.size),
    UPDATE_PRODUCT: core.config.device.product,
    UPDATE_DEVICE: core.config.device.id,
    UPDATE_CURRENT_VERSION: core.running,
    UPDATE_STATE_DIR: core.stateDir,
    ...(core.config.files ? { UPDATE_CONFIG: core.config.files.ioto } : {}),
  };
}
