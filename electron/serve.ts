/**
 * `npm run serve`: the headless relay. Reads the environment (exits non-zero naming every bad
 * variable before listening), starts the relay, prints how to join, stops cleanly on a signal.
 */
import { PhotoRelayError } from '../shared/errors.ts';
import { ConfigError, loadRelayConfig, type RelayConfig } from './config/relay-config.ts';
import type { Settings } from './photos/settings.ts';
import { createRelay } from './relay/app.ts';
import { reachableHosts } from './relay/network.ts';

function banner(config: RelayConfig, port: number, settings: Settings): string {
  const { pin } = settings.current();
  const hosts = reachableHosts(config.host);
  const lines = [
    '',
    'Photo Relay is running.',
    ...hosts.map((host) => `  guests (uploader):  http://${host}:${port}/`),
    ...hosts.map((host) => `  display wall:       http://${host}:${port}/display`),
    `  on this computer:   http://localhost:${port}/`,
    `  operator dashboard: http://localhost:${port}/admin#token=${config.adminToken}`,
    pin
      ? `  event PIN:    ${pin}${settings.pinMadeNow ? '  (new for this data folder, kept across restarts; set EVENT_PIN to choose it)' : ''}`
      : '  event PIN:    OFF — anyone on the network can upload and watch',
    `  data folder:  ${config.dataDir}`,
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<number> {
  let config: RelayConfig;
  try {
    config = loadRelayConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`photo-relay: ${error.message}`);
      return 2;
    }
    throw error;
  }
  let relay;
  try {
    relay = await createRelay(config);
  } catch (error) {
    console.error(
      `photo-relay: ${error instanceof PhotoRelayError ? error.message : String(error)}`,
    );
    return 1;
  }
  if (relay.settings.current().pin === null)
    relay.logger.warn({ event: 'pin.off' }, 'EVENT_PIN=off: uploads and displays need no PIN');
  const { port } = await relay.start().catch(async (error: unknown) => {
    console.error(`photo-relay: cannot listen on ${config.host}:${config.port}: ${String(error)}`);
    await relay.stop();
    process.exit(1);
  });
  console.error(banner(config, port, relay.settings));

  let signals = 0;
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) process.exit(130); // a second Ctrl+C means now
      relay.logger.info({ event: 'signal', signal }, 'shutting down');
      void relay.stop().then(resolve, (error: unknown) => {
        relay.logger.error({ event: 'stop.failed', err: String(error) }, 'stop failed');
        resolve();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  return 0;
}

process.exitCode = await main();
