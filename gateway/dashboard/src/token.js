// The API's bearer token: taken from the address's fragment (`/dashboard#token=...`, which the
// browser never sends to a server), kept in this tab's sessionStorage, and removed from the
// address bar so it does not linger in history or screenshots.

const KEY = 'chatstream.dashboard.token';

export function takeTokenFromLocation(location, history, storage) {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ''));
  const token = fragment.get('token');
  if (token) {
    storage.setItem(KEY, token.trim());
    fragment.delete('token');
    const rest = fragment.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
  }
  return storage.getItem(KEY);
}

export function saveToken(storage, token) {
  storage.setItem(KEY, token.trim());
}

export function forgetToken(storage) {
  storage.removeItem(KEY);
}
