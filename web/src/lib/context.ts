// What every page reaches without passing it down: the typed API client, the session and the
// live feed. App.svelte provides it once; a page calls `useApp()`.

import { getContext, setContext } from "svelte";
import type { Api } from "../api/client";
import type { Live } from "./live";
import type { Session } from "../session";

export interface AppContext {
  api: Api;
  live: Live;
  /** The logged-in user's session (never null while a page is shown). */
  session: () => Session;
  isAdmin: () => boolean;
}

const KEY = Symbol("app");

export function provideApp(context: AppContext): void {
  setContext(KEY, context);
}

export function useApp(): AppContext {
  return getContext<AppContext>(KEY);
}
