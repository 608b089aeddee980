import { Test, TestingModule } from '@nestjs/testing';
import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { AppModule } from './../src/app.module.js';
import { configureApp } from './../src/app.setup.js';

async function startApp(): Promise<NestExpressApplication> {
  const moduleFixture: TestingModule = await Test.createTestingModule({
    imports: [AppModule],
  }).compile();
  const app = moduleFixture.createNestApplication<NestExpressApplication>();
  configureApp(app);
  await app.init();
  return app;
}

describe('AppController (e2e)', () => {
  let app: NestExpressApplication;

  beforeEach(async () => {
    // No database and no Redis: the health check reports them absent.
    vi.stubEnv('DATABASE_URL', '');
    vi.stubEnv('REDIS_URL', '');
    app = await startApp();
  });

  afterEach(async () => {
    await app.close();
    vi.unstubAllEnvs();
  });

  it('/api (GET)', () => {
    return request(app.getHttpServer())
      .get('/api')
      .expect(200)
      .expect('Hello World!');
  });

  it('/api/health (GET) without Postgres or Redis', () => {
    return request(app.getHttpServer())
      .get('/api/health')
      .expect(200)
      .expect('Cache-Control', 'no-store')
      .expect({ status: 'ok', database: 'absent', redis: 'absent' });
  });

  it('serves nothing outside /api', () => {
    return request(app.getHttpServer()).get('/health').expect(404);
  });

  it('trusts one proxy (nginx) for req.ip and req.protocol', () => {
    const expressApp = app.getHttpAdapter().getInstance();
    expect(expressApp.get('trust proxy')).toBe(1);
  });
});

describe('/api/health (e2e) with Postgres and Redis unreachable', () => {
  let app: NestExpressApplication;

  beforeEach(async () => {
    // Port 1 on loopback refuses connections at once.
    vi.stubEnv('DATABASE_URL', 'postgres://app1:secret@127.0.0.1:1/app1');
    vi.stubEnv('REDIS_URL', 'redis://app1:secret@127.0.0.1:1/0');
    app = await startApp();
  });

  afterEach(async () => {
    await app.close();
    vi.unstubAllEnvs();
  });

  it('answers 503 with what failed, and keeps serving', async () => {
    const res = await request(app.getHttpServer())
      .get('/api/health')
      .expect(503);
    expect(res.body).toMatchObject({
      status: 'error',
      database: 'down',
      redis: 'down',
    });
    expect(res.body.errors.database).toMatch(/ECONNREFUSED|timed out/);
    expect(res.body.errors.redis).toMatch(/not connected/);
    await request(app.getHttpServer()).get('/api').expect(200);
  });
});
