import { RedisService } from './redis.service.js';

describe('RedisService', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('has no client without REDIS_URL', async () => {
    vi.stubEnv('REDIS_URL', '');
    const redis = new RedisService();
    redis.onModuleInit();
    expect(redis.enabled).toBe(false);
    await expect(redis.ping()).rejects.toThrow('REDIS_URL is not set');
    await redis.onApplicationShutdown();
  });

  it('prefixes keys with REDIS_KEY_PREFIX', () => {
    vi.stubEnv('REDIS_KEY_PREFIX', 'app1:');
    expect(new RedisService().key('sessions:42')).toBe('app1:sessions:42');
  });

  it('fails the ping, without crashing, while Redis is unreachable', async () => {
    // Port 1 on loopback: connection refused at once; the client keeps retrying.
    vi.stubEnv('REDIS_URL', 'redis://app1:secret@127.0.0.1:1/0');
    const redis = new RedisService();
    redis.onModuleInit();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await expect(redis.ping()).rejects.toThrow(/not connected/);
    await redis.onApplicationShutdown();
  });
});
