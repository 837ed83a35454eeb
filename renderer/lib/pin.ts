const STORAGE_KEY = 'photo-relay.pin';

/** The event PIN: from ?pin= (then remembered), else the one remembered on this device. */
export function initialPin(): string | undefined {
  const fromUrl = new URLSearchParams(location.search).get('pin')?.trim();
  if (fromUrl) {
    rememberPin(fromUrl);
    return fromUrl;
  }
  return localStorage.getItem(STORAGE_KEY) ?? undefined;
}

export function rememberPin(pin: string): void {
  localStorage.setItem(STORAGE_KEY, pin);
}

export function forgetPin(): void {
  localStorage.removeItem(STORAGE_KEY);
}

/** A relay URL with the PIN as a query parameter (for <img> and WebSocket, which cannot set headers). */
export function withPin(url: string, pin: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}pin=${encodeURIComponent(pin)}`;
}
