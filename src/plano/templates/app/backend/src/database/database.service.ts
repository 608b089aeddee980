import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import pg from 'pg';
import { CHECK_TIMEOUT_MS, withTimeout } from '../common/with-timeout.js';

/**
 * The app's Postgres pool, from DATABASE_URL (set by the infra when the app
 * has a database). Inject it and use `pool.query(...)`; `pool` is null when
 * DATABASE_URL is not set.
 */
@Injectable()
export class DatabaseService implements OnApplicationShutdown {
  private readonly logger = new Logger(DatabaseService.name);
  readonly pool: pg.Pool | null;

  constructor() {
    const url = process.env.DATABASE_URL;
    this.pool = url ? this.createPool(url) : null;
  }

  get enabled(): boolean {
    return this.pool !== null;
  }

  /** SELECT 1; rejects when Postgres does not answer in time. */
  async ping(): Promise<void> {
    if (!this.pool) throw new Error('DATABASE_URL is not set');
    await withTimeout(
      this.pool.query('SELECT 1'),
      CHECK_TIMEOUT_MS,
      'SELECT 1',
    );
  }

  async onApplicationShutdown(): Promise<void> {
    if (!this.pool) return;
    await withTimeout(this.pool.end(), 1000, 'closing the Postgres pool').catch(
      (err: Error) => this.logger.warn(err.message),
    );
  }

  private createPool(url: string): pg.Pool {
    const pool = new pg.Pool({
      connectionString: url,
      max: 10,
      idleTimeoutMillis: 10_000,
      connectionTimeoutMillis: CHECK_TIMEOUT_MS,
      query_timeout: 10_000,
    });
    // An idle client whose connection drops (Postgres restarted) emits
    // 'error' on the pool; unhandled, that would crash the process. The pool
    // discards that client and connects afresh on the next query.
    pool.on('error', (err) =>
      this.logger.warn(`idle client error: ${err.message}`),
    );
    return pool;
  }
}
