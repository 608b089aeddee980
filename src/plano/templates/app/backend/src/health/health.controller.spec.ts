import { Test } from '@nestjs/testing';
import type { Response } from 'express';
import { HealthController } from './health.controller.js';
import { HealthReport, HealthService } from './health.service.js';

function fakeResponse() {
  const res = { statusCode: 0, headers: {} as Record<string, string> };
  return Object.assign(res, {
    status(code: number) {
      res.statusCode = code;
      return this;
    },
    setHeader(name: string, value: string) {
      res.headers[name.toLowerCase()] = value;
      return this;
    },
  });
}

async function controllerReturning(
  report: HealthReport,
): Promise<HealthController> {
  const moduleRef = await Test.createTestingModule({
    controllers: [HealthController],
    providers: [
      {
        provide: HealthService,
        useValue: { check: () => Promise.resolve(report) },
      },
    ],
  }).compile();
  return moduleRef.get(HealthController);
}

describe('HealthController', () => {
  it('answers 200 when healthy', async () => {
    const report: HealthReport = {
      status: 'ok',
      database: 'up',
      redis: 'absent',
    };
    const res = fakeResponse();
    const controller = await controllerReturning(report);
    await expect(controller.check(res as unknown as Response)).resolves.toEqual(
      report,
    );
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('answers 503 when a dependency is down', async () => {
    const report: HealthReport = {
      status: 'error',
      database: 'down',
      redis: 'up',
      errors: { database: 'x' },
    };
    const res = fakeResponse();
    const controller = await controllerReturning(report);
    await expect(controller.check(res as unknown as Response)).resolves.toEqual(
      report,
    );
    expect(res.statusCode).toBe(503);
  });
});
