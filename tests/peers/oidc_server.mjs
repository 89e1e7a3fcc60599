// A real OAuth 2.0 / OpenID Connect authorization server (oidc-provider) for Patchbay's tests.
//
// Usage: node oidc_server.mjs TOOLS_DIR PORT REDIRECT_URI [--mcp]  (TOOLS_DIR holds node_modules)
// One confidential client: patchbay / patchbay-secret (client_secret_basic), PKCE required,
// refresh tokens rotated on every use, client credentials and revocation enabled. The user
// interaction is scripted: every authorization request is logged in as "user-1" and consented.
// With --mcp it is also the authorization server of an MCP server: open dynamic client
// registration (RFC 7591), resource indicators (RFC 8707; tokens for a resource carry the
// scopes mcp:tools and mcp:admin and are bound to it) and introspection (RFC 7662) for the
// resource server's client mcp-rs / mcp-rs-secret.
// GET /_stats answers {token_requests, revocations, grace_uses}; /_mode changes behaviour:
//   token=503|slow|ok   how the token endpoint answers (outage tests);
//   access_ttl=SECONDS  the lifetime of access tokens issued from now on;
//   grace=SECONDS       how long a rotated refresh token stays usable after its rotation, as
//                       Okta, Auth0 and Xero allow (0, the default: reuse is refused and, as
//                       oidc-provider does, revokes the grant).
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [tools, portArg, redirect, ...flags] = process.argv.slice(2);
const mcp = flags.includes("--mcp");
const { default: Provider } = await import(pathToFileURL(join(tools, "node_modules/oidc-provider/lib/index.js")).href);
const port = Number(portArg);
const issuer = `http://127.0.0.1:${port}`;
const stats = { token_requests: 0, revocations: 0, grace_uses: 0, registrations: 0, resources: [] };
let mode = "ok";
let accessTtl = 3600;
let grace = 0;

// oidc-provider's storage, in memory, with the refresh-token grace described above.
const store = new Map();
const grants = new Map();
class Adapter {
  constructor(name) {
    this.name = name;
  }
  key(id) {
    return `${this.name}:${id}`;
  }
  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    store.set(key, { payload: { ...payload }, expires: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (payload.grantId) {
      if (!grants.has(payload.grantId)) grants.set(payload.grantId, new Set());
      grants.get(payload.grantId).add(key);
    }
  }
  async find(id) {
    const entry = store.get(this.key(id));
    if (!entry || entry.expires < Date.now()) return undefined;
    const payload = { ...entry.payload };
    if (this.name === "RefreshToken" && payload.consumed && grace > 0 && Date.now() - entry.consumedAt < grace * 1000) {
      delete payload.consumed;
      stats.grace_uses += 1;
    }
    return payload;
  }
  async findByUid(uid) {
    for (const [key, entry] of store) {
      if (key.startsWith(`${this.name}:`) && entry.payload.uid === uid) return this.find(key.slice(this.name.length + 1));
    }
    return undefined;
  }
  async findByUserCode(userCode) {
    for (const [key, entry] of store) {
      if (key.startsWith(`${this.name}:`) && entry.payload.userCode === userCode) return this.find(key.slice(this.name.length + 1));
    }
    return undefined;
  }
  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) {
      entry.payload.consumed = Math.floor(Date.now() / 1000);
      entry.consumedAt = Date.now();
    }
  }
  async destroy(id) {
    store.delete(this.key(id));
  }
  async revokeByGrantId(grantId) {
    for (const key of grants.get(grantId) || []) store.delete(key);
    grants.delete(grantId);
  }
}

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
    ...(mcp
      ? [
          {
            client_id: "mcp-rs",
            client_secret: "mcp-rs-secret",
            redirect_uris: [],
            grant_types: [],
            response_types: [],
            token_endpoint_auth_method: "client_secret_basic",
          },
        ]
      : []),
  ],
  scopes: ["openid", "offline_access", "api", ...(mcp ? ["mcp:tools", "mcp:admin"] : [])],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
    registration: { enabled: mcp },
    introspection: { enabled: mcp },
    resourceIndicators: {
      enabled: mcp,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => ({
        scope: "mcp:tools mcp:admin",
        audience: resourceIndicator,
        accessTokenFormat: "opaque",
      }),
    },
  },
  adapter: Adapter,
  // Every authorization code needs its PKCE verifier (S256), confidential clients too: an
  // exchange with a missing or wrong one fails with invalid_grant.
  pkce: { required: () => true },
  rotateRefreshToken: true,
  issueRefreshToken: async () => true,
  ttl: { AccessToken: () => accessTtl, ClientCredentials: 600, RefreshToken: 86400, Interaction: 600, Session: 600, Grant: 86400 },
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
    if (ctx.query.token) mode = ctx.query.token;
    if (ctx.query.access_ttl) accessTtl = Number(ctx.query.access_ttl);
    if (ctx.query.grace) grace = Number(ctx.query.grace);
    ctx.body = { mode, access_ttl: accessTtl, grace };
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
  if (ctx.path === "/reg" && ctx.method === "POST") stats.registrations += 1;
  if (ctx.path === "/auth" && ctx.query.resource) stats.resources.push(`auth ${ctx.query.resource}`);
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
      for (const [indicator, scopes] of Object.entries(details.prompt.details.missingResourceScopes || {})) {
        grant.addResourceScope(indicator, scopes.join(" "));
      }
      result = { consent: { grantId: await grant.save() } };
    }
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
    return;
  }
  await next();
});

provider.listen(port, "127.0.0.1", () => console.log(`READY ${port}`));
