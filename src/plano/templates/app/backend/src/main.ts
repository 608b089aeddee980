import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Server } from 'node:http';
import { AppModule } from './app.module.js';
import { configureApp } from './app.setup.js';

async function bootstrap() {
  const app = await NestFactory.create<NestExpressApplication>(AppModule);
  // Global prefix `api` and Express `trust proxy` (see app.setup.ts; the e2e
  // tests apply the same setup).
  configureApp(app);
  // SIGTERM/SIGINT (docker stop) close the HTTP server, then the Postgres
  // pool and the Redis client (onApplicationShutdown), then exit.
  app.enableShutdownHooks();

  // nginx keeps idle upstream connections open for 60 s: keep ours open
  // longer, so nginx never reuses a connection Node has just closed (a 502).
  const server = app.getHttpServer() as Server;
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  await app.listen(process.env.PORT ?? 3000, '0.0.0.0');
}
await bootstrap();
