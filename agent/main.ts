/** Entry of `updraft-agent` (bin/updraft-agent.js, dist/updraft-agent.mjs); see cli.ts. */
import { main } from './cli.ts';

// stderr is synchronous on Linux pipes and files, so exit() loses no log line; it also spares waiting
// on idle keep-alive sockets.
process.exit(await main(process.argv.slice(2)));
