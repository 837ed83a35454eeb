/**
 * The dashboard's only way to the relay: the loopback admin API with the admin token. The token
 * arrives in the URL fragment (never sent to a server, never in logs) or, in the desktop app, from
 * the shell over IPC (the preload's getAdminToken; the main process answers only the dashboard),
 * and is kept for this tab only.
 */
const TOKEN_KEY = 'photo-relay.admin-token';

declare global {
  interface Window {
    photoRelay?: { getAdminToken(): Promise<string>; openDataFolder(): Promise<void> };
  }
}

/**
 * The desktop shell's token, asked for once while this module loads (a top-level await: one IPC
 * round trip), so adminToken() stays synchronous for every module that imports this one. In a
 * browser there is no window.photoRelay and nothing is awaited.
 */
const fromShell: string | undefined = window.photoRelay
  ? await window.photoRelay.getAdminToken().catch(() => undefined)
  : undefined;

export function adminToken(): string | undefined {
  if (fromShell) return fromShell;
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    sessionStorage.setItem(TOKEN_KEY, fromHash);
    history.replaceState(null, '', location.pathname + location.search);
    return fromHash;
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

export class AdminApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function adminFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const token = adminToken();
  const response = await fetch(`/admin/api${path}`, {
    ...init,
    headers: {
      ...(typeof init.body === 'string' ? { 'Content-Type': 'application/json' } : {}),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(init.headers as Record<string, string> | undefined),
    },
  });
  if (!response.ok) {
    const body = (await response.json().catch(() => undefined)) as { message?: string } | undefined;
    throw new AdminApiError(response.status, body?.message ?? `HTTP ${response.status}`);
  }
  return response;
}

export async function adminJson<T>(path: string, init?: RequestInit): Promise<T> {
  return (await adminFetch(path, init)).json() as Promise<T>;
}
