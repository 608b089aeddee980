import type { NestExpressApplication } from '@nestjs/platform-express';

/** Express `trust proxy` from TRUST_PROXY: a hop count, true/false, or a list of addresses. */
export function trustProxySetting(
  value: string | undefined,
): number | boolean | string {
  const v = (value ?? '').trim();
  if (v === '') return 1; // one proxy in front: the infra's nginx
  if (/^\d+$/.test(v)) return Number(v);
  if (v === 'true' || v === 'false') return v === 'true';
  return v;
}

/** Everything main.ts sets on the app that the e2e tests need too. */
export function configureApp(
  app: NestExpressApplication,
): NestExpressApplication {
  // nginx routes /api/ to this backend and / to the frontend, on one origin.
  app.setGlobalPrefix('api');
  // Behind nginx: req.ip, req.protocol and req.secure come from X-Forwarded-*.
  app.set('trust proxy', trustProxySetting(process.env.TRUST_PROXY));
  app.disable('x-powered-by');
  return app;
}
