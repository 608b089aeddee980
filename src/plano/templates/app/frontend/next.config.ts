import type { NextConfig } from "next";

// In a container the source is bind-mounted from the host, and file events do
// not cross every bind mount: there `next dev` polls every second. Turbopack
// ignores WATCHPACK_POLLING itself, so it is read here; the dev image and the
// infra's dev compose file set it. Elsewhere file events are used: faster,
// and free while idle.
const polling = process.env.WATCHPACK_POLLING === "true";

const nextConfig: NextConfig = {
  // `next build` writes a self-contained server to .next/standalone: the
  // production image runs `node server.js` with only the files it needs.
  output: "standalone",
  watchOptions: polling ? { pollIntervalMs: 1000 } : undefined,
  // nginx hides it as well; no need to send it.
  poweredByHeader: false,
  cacheComponents: true,
  partialPrefetching: true,
};

export default nextConfig;
