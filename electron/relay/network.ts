import os from 'node:os';

/** This machine's IPv4 LAN addresses (what guests' phones and the displays can reach). */
export function lanAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .filter(
      (info): info is os.NetworkInterfaceInfo => !!info && info.family === 'IPv4' && !info.internal,
    )
    .map((info) => info.address);
}

/** The hosts guests and displays use: the LAN addresses when listening on all interfaces. */
export function reachableHosts(listenHost: string): string[] {
  return listenHost === '0.0.0.0' || listenHost === '::' ? lanAddresses() : [listenHost];
}
