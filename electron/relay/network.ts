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
