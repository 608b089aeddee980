import { Test } from '@nestjs/testing';
import { DatabaseService } from '../database/database.service.js';
import { RedisService } from '../redis/redis.service.js';
import { HealthService } from './health.service.js';

type Fake = { enabled: boolean; ping: () => Promise<void> };

const absent: Fake = {
  enabled: false,
  ping: () => Promise.reject(new Error('not set')),
};
const up: Fake = { enabled: true, ping: () => Promise.resolve() };
const down = (message: string): Fake => ({
  enabled: true,
  ping: () => Promise.reject(new Error(message)),
});

async function healthWith(database: Fake, redis: Fake): Promise<HealthService> {
  const moduleRef = await Test.createTestingModule({
    providers: [
      HealthService,
      { provide: DatabaseService, useValue: database },
      { provide: RedisService, useValue: redis },
    ],
  }).compile();
  return moduleRef.get(HealthService);
}

describe('HealthService', () => {
  it('is ok when neither Postgres nor Redis is configured', async () => {
    const health = await healthWith(absent, absent);
    await expect(health.check()).resolves.toEqual({
      status: 'ok',
      database: 'absent',
      redis: 'absent',
    });
  });

  it('is ok when both answer', async () => {
    const health = await healthWith(up, up);
    await expect(health.check()).resolves.toEqual({
      status: 'ok',
      database: 'up',
      redis: 'up',
    });
  });

  it('reports what failed', async () => {
    const health = await healthWith(
      down('connect ECONNREFUSED 10.0.0.2:5432'),
      up,
    );
    await expect(health.check()).resolves.toEqual({
      status: 'error',
      database: 'down',
      redis: 'up',
      errors: { database: 'connect ECONNREFUSED 10.0.0.2:5432' },
    });
  });

  it('reports both failures', async () => {
    const health = await healthWith(
      down('SELECT 1 timed out after 2000 ms'),
      down('not connected'),
    );
    const report = await health.check();
    expect(report.status).toBe('error');
    expect(report.errors).toEqual({
      database: 'SELECT 1 timed out after 2000 ms',
      redis: 'not connected',
    });
  });
});
