// A real OAuth 2.0 / OpenID Connect authorization server (oidc-provider) for Patchbay's tests.
//
// Usage: node oidc_server.mjs TOOLS_DIR PORT REDIRECT_URI  (TOOLS_DIR holds node_modules)
// One confidential client: patchbay / patchbay-secret (client_secret_basic), PKCE required,
// refresh tokens rotated on every use, client credentials and revocation enabled. The user
// interaction is scripted: every authorization request is logged in as "user-1" and consented.
// GET /_stats answers {token_requests, revocations}; POST /_mode?token=503|slow|ok changes how
// the token endpoint answers (for outage tests).
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [tools, portArg, redirect] = process.argv.slice(2);
const { default: Provider } = await import(pathToFileURL(join(tools, "node_modules/oidc-provider/lib/index.js")).href);
const port = Number(portArg);
const issuer = `http://127.0.0.1:${port}`;
const stats = { token_requests: 0, revocations: 0 };
let mode = "ok";

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "patchbay",
      client_secret: "patchbay-secret",
      redirect_uris: [redirect],
      grant_types: ["authorization_code", "refresh_token", "client_credentials"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
      scope: "openid offline_access api",
    },
  ],
  scopes: ["openid", "offline_access", "api"],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
  },
  rotateRefreshToken: true,
  issueRefreshToken: async () => true,
  ttl: { AccessToken: 3600, ClientCredentials: 600, RefreshToken: 86400, Interaction: 600, Session: 600, Grant: 86400 },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, email: `${id}@example.com` }) }),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});
provider.proxy = false;

provider.use(async (ctx, next) => {
  if (ctx.path === "/_stats") {
    ctx.body = stats;
    return;
  }
  if (ctx.path === "/_mode") {
    mode = ctx.query.token || "ok";
    ctx.body = { mode };
    return;
  }
  if (ctx.path === "/token") {
    stats.token_requests += 1;
    if (mode === "503") {
      ctx.status = 503;
      ctx.body = { error: "temporarily_unavailable" };
      return;
    }
    if (mode === "slow") await new Promise((r) => setTimeout(r, 5000));
  }
  if (ctx.path === "/token/revocation") stats.revocations += 1;
  // The scripted user: log in as user-1 and grant what the client asked for.
  const m = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (m) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const accountId = "user-1";
    let result;
    if (details.prompt.name === "login") {
      result = { login: { accountId } };
    } else {
      const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
      grant.addOIDCScope(String(details.params.scope || "openid"));
      result = { consent: { grantId: await grant.save() } };
    }
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
    return;
  }
  await next();
});

provider.listen(port, "127.0.0.1", () => console.log(`READY ${port}`));
