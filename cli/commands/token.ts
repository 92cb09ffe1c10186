/** `updraft token create|list|revoke`: device tokens, shown once, stored as hashes. */
import { answer, type Command, loadAdmin, required, str } from '../command.ts';
import { UsageError } from '../errors.ts';
import { table } from '../format.ts';

export const tokenCreate: Command = {
  summary: 'create a device token (shown once)',
  usage: `Usage: updraft token create --product P [--device ID] [--description TEXT]
Create a token devices of product P (or only device ID) check in with. It is shown once and
stored only as a hash.`,
  options: { product: { type: 'string' }, device: { type: 'string' }, description: { type: 'string' } },
  async run(ctx) {
    const product = required(ctx, 'product', 'P');
    const device = str(ctx.values, 'device');
    const description = str(ctx.values, 'description');
    const scope = {
      product,
      ...(device !== undefined ? { device } : {}),
      ...(description !== undefined ? { description } : {}),
    };
    const { checkTokenScope, createToken } = await loadAdmin();
    checkTokenScope(scope); // before the cloud is opened
    const { token, info } = await createToken(await ctx.cloud(), scope);
    const text = [
      `Token for product ${product}${device ? `, device ${device}` : ''} (shown once, store it now):`,
      `  ${token}`,
      `Id ${info.id} (for updraft token revoke).`,
    ];
    return answer(ctx, { token, ...info }, text.join('\n'));
  },
};

export const tokenList: Command = {
  summary: 'list device tokens (ids, not secrets)',
  usage: `Usage: updraft token list [--product P]
List tokens by id, product and device; the secrets are not stored.`,
  options: { product: { type: 'string' } },
  async run(ctx) {
    const { listTokens } = await loadAdmin();
    const tokens = await listTokens(await ctx.cloud(), str(ctx.values, 'product'));
    if (ctx.json || tokens.length === 0) return answer(ctx, tokens, 'No tokens.');
    const rows = tokens.map((t) => [t.id, t.product, t.device ?? '*', t.created, t.description ?? '']);
    ctx.print(table(['ID', 'PRODUCT', 'DEVICE', 'CREATED', 'DESCRIPTION'], rows));
    return 0;
  },
};

export const tokenRevoke: Command = {
  summary: 'revoke a device token',
  usage: `Usage: updraft token revoke ID
Revoke the token with this id (from updraft token list). Devices using it get 401 once the
clouds' token caches expire (at most a minute).`,
  positionals: ['ID'],
  async run(ctx) {
    const id = ctx.positionals[0];
    if (id === undefined || id === '')
      throw new UsageError('Missing ID: updraft token revoke ID (see updraft token list)');
    const { checkTokenId, revokeToken } = await loadAdmin();
    checkTokenId(id);
    const result = await revokeToken(await ctx.cloud(), id);
    return answer(ctx, result, `Revoked token ${id}.`);
  },
};
