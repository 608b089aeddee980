import { DatabaseService } from './database.service.js';

describe('DatabaseService', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('has no pool without DATABASE_URL', async () => {
    vi.stubEnv('DATABASE_URL', '');
    const db = new DatabaseService();
    expect(db.enabled).toBe(false);
    expect(db.pool).toBeNull();
    await expect(db.ping()).rejects.toThrow('DATABASE_URL is not set');
    await db.onApplicationShutdown();
  });

  it('fails the ping, without crashing, when Postgres is unreachable', async () => {
    // Port 1 on loopback: connection refused at once.
    vi.stubEnv('DATABASE_URL', 'postgres://app1:secret@127.0.0.1:1/app1');
    const db = new DatabaseService();
    expect(db.enabled).toBe(true);
    await expect(db.ping()).rejects.toThrow(/ECONNREFUSED|timed out/);
    await db.onApplicationShutdown();
  });
});
