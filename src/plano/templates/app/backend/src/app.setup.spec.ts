import { trustProxySetting } from './app.setup.js';

describe('trustProxySetting', () => {
  it('trusts one proxy (nginx) by default', () => {
    expect(trustProxySetting(undefined)).toBe(1);
    expect(trustProxySetting('')).toBe(1);
  });

  it('reads a hop count, a boolean or a list of addresses', () => {
    expect(trustProxySetting('2')).toBe(2);
    expect(trustProxySetting('false')).toBe(false);
    expect(trustProxySetting('loopback, 10.0.0.0/8')).toBe(
      'loopback, 10.0.0.0/8',
    );
  });
});
