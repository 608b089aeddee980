"use client";

import { useEffect, useState } from "react";

type Health =
  | { state: "loading" }
  | { state: "done"; httpStatus: number; body: unknown }
  | { state: "failed"; error: string };

/**
 * Calls the backend from the browser, on the page's own origin: nginx routes
 * /api/ to the backend. No API URL is baked in at build time, so the same
 * image serves every environment (NEXT_PUBLIC_* variables are frozen by
 * `next build`).
 */
export function BackendHealth() {
  const [health, setHealth] = useState<Health>({ state: "loading" });

  useEffect(() => {
    const controller = new AbortController();
    fetch("/api/health", { cache: "no-store", signal: controller.signal })
      .then(async (res) => {
        const text = await res.text();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON (e.g. nginx's 502 page while the backend starts)
        }
        setHealth({ state: "done", httpStatus: res.status, body });
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setHealth({ state: "failed", error: String(err) });
      });
    return () => controller.abort();
  }, []);

  if (health.state === "loading") return <p id="backend-status">Checking the backend…</p>;
  if (health.state === "failed") return <p id="backend-status">Backend unreachable: {health.error}</p>;
  return (
    <>
      <p id="backend-status">
        Backend answered <strong>{health.httpStatus}</strong>
      </p>
      <pre id="backend-health">{JSON.stringify(health.body, null, 2)}</pre>
    </>
  );
}
