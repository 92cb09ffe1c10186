/** The agent as a library; see agent.ts for the `device:update` contract. */
export {
  Agent,
  type AgentOptions,
  type ApplyResult,
  type CycleOutcome,
  type CycleResult,
  type DeviceUpdateEvent,
  type DownloadProgress,
  type StateChange,
  type UpdateListener,
} from './agent.ts';
export { type AgentConfig, type ConfigFiles, DEFAULT_CONFIG_FILES, loadAgentConfig } from './config.ts';
export { ApplyError, ConfigError, HttpStatusError, StateLockedError } from './errors.ts';
export type { Logger } from './log.ts';
