import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';
import { RedisService } from '../redis/redis.service.js';

/** up: answered; down: configured but failed; absent: its URL is not set. */
export type DependencyState = 'up' | 'down' | 'absent';

export interface HealthReport {
  status: 'ok' | 'error';
  database: DependencyState;
  redis: DependencyState;
  /** What failed, per dependency (only when status is "error"). */
  errors?: Partial<Record<'database' | 'redis', string>>;
}

interface Dependency {
  readonly enabled: boolean;
  ping(): Promise<void>;
}

async function probe(dep: Dependency): Promise<[DependencyState, string?]> {
  if (!dep.enabled) return ['absent'];
  try {
    await dep.ping();
    return ['up'];
  } catch (err) {
    return ['down', err instanceof Error ? err.message : String(err)];
  }
}

@Injectable()
export class HealthService {
  constructor(
    private readonly database: DatabaseService,
    private readonly redis: RedisService,
  ) {}

  async check(): Promise<HealthReport> {
    const [[database, databaseError], [redis, redisError]] = await Promise.all([
      probe(this.database),
      probe(this.redis),
    ]);
    const report: HealthReport = { status: 'ok', database, redis };
    if (databaseError !== undefined || redisError !== undefined) {
      report.status = 'error';
      report.errors = {};
      if (databaseError !== undefined) report.errors.database = databaseError;
      if (redisError !== undefined) report.errors.redis = redisError;
    }
    return report;
  }
}
