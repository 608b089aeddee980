import {
  Injectable,
  Logger,
  OnApplicationShutdown,
  OnModuleInit,
} from '@nestjs/common';
import { createClient } from 'redis';
import { CHECK_TIMEOUT_MS, withTimeout } from '../common/with-timeout.js';

function newClient(url: string) {
  return createClient({
    url,
    // Fail commands at once while disconnected instead of queueing them,
    // so a health check answers quickly during a Redis restart.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: CHECK_TIMEOUT_MS,
      reconnectStrategy: (retries: number) =>
        Math.min(100 * 2 ** Math.min(retries, 5), 2000),
    },
  });
}

export type RedisClient = ReturnType<typeof newClient>;

/**
 * The app's Redis client, from REDIS_URL (set by the infra when the app has
 * Redis; its ACL user may only touch keys and channels that start with
 * REDIS_KEY_PREFIX: build them with `key()`). `client` is null when REDIS_URL
 * is not set.
 */
@Injectable()
export class RedisService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RedisService.name);
  private lastError = '';
  readonly client: RedisClient | null;
  readonly prefix = process.env.REDIS_KEY_PREFIX ?? '';

  constructor() {
    const url = process.env.REDIS_URL;
    this.client = url ? this.createClient(url) : null;
  }

  get enabled(): boolean {
    return this.client !== null;
  }

  /** The app's key (or channel) for `name`: REDIS_KEY_PREFIX + name. */
  key(name: string): string {
    return `${this.prefix}${name}`;
  }

  onModuleInit(): void {
    // Not awaited: a Redis that is down at start-up fails the health check,
    // never the start; the client keeps retrying in the background.
    this.client
      ?.connect()
      .catch((err: Error) =>
        this.logger.warn(`connect failed: ${err.message}`),
      );
  }

  /** PING as the URL's ACL user; rejects at once while disconnected. */
  async ping(): Promise<void> {
    if (!this.client) throw new Error('REDIS_URL is not set');
    if (!this.client.isReady) {
      const why = this.lastError ? `: ${this.lastError}` : '';
      throw new Error(`not connected${why}`);
    }
    await withTimeout(this.client.ping(), CHECK_TIMEOUT_MS, 'PING');
  }

  async onApplicationShutdown(): Promise<void> {
    const client = this.client;
    if (!client?.isOpen) return;
    try {
      // close() waits for pending replies; while reconnecting there is no
      // connection to close gracefully, so just stop retrying.
      if (client.isReady) {
        await withTimeout(client.close(), 1000, 'closing the Redis client');
      } else {
        client.destroy();
      }
    } catch (err) {
      this.logger.warn((err as Error).message);
      client.destroy();
    }
  }

  private createClient(url: string): RedisClient {
    const client = newClient(url);
    // The client emits 'error' for every dropped connection and failed
    // retry; unhandled, that would crash the process. Log each new error once.
    client.on('error', (err: Error) => {
      if (err.message !== this.lastError) this.logger.warn(err.message);
      this.lastError = err.message;
    });
    client.on('ready', () => {
      if (this.lastError) this.logger.log('connected again');
      this.lastError = '';
    });
    return client;
  }
}
