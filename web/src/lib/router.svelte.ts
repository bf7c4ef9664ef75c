// Client-side routes: the address bar is the state. The gateway answers every non-API path
// with index.html, so any of these can be loaded, bookmarked or reloaded directly.

const here = () => (typeof location === "undefined" ? "/" : location.pathname + location.search);

class Router {
  /** The current path with its query, e.g. `/servers/7?tab=console`. */
  url = $state(here());

  get path(): string {
    return this.url.split("?")[0];
  }

  get query(): URLSearchParams {
    return new URLSearchParams(this.url.split("?")[1] ?? "");
  }
}

export const router = new Router();

/** Goes to a path of the dashboard without reloading the page. */
export function navigate(to: string, replace = false): void {
  if (to === router.url) return;
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  router.url = to;
  window.scrollTo(0, 0);
}

/**
 * The named parts of `path` when it matches `pattern` (`/servers/:id` matches
 * `/servers/7` as `{id: "7"}`), else null.
 */
export function match(pattern: string, path: string): Record<string, string> | null {
  const want = pattern.split("/").filter(Boolean);
  const got = path.split("/").filter(Boolean);
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(":")) params[want[i].slice(1)] = decodeURIComponent(got[i]);
    else if (want[i] !== got[i]) return null;
  }
  return params;
}

/** Follows the browser's back and forward buttons, and plain links inside the dashboard. */
export function listen(): () => void {
  const pop = () => (router.url = here());
  const click = (event: MouseEvent) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = (event.target as Element | null)?.closest?.("a");
    if (!link || link.target || link.hasAttribute("download")) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  };
  window.addEventListener("popstate", pop);
  document.addEventListener("click", click);
  return () => {
    window.removeEventListener("popstate", pop);
    document.removeEventListener("click", click);
  };
}
