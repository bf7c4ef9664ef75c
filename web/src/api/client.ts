// The API client, typed from the gateway's OpenAPI document (`web/openapi.json`, kept equal
// to what the gateway serves by a test): a path, parameter or field the API does not have
// is a type error here.

import createClient, { type Middleware } from "openapi-fetch";
import type { SessionKeeper } from "../session";
import type { paths } from "./schema";

export type Api = ReturnType<typeof createClient<paths>>;

export function apiClient(session: SessionKeeper, onLoggedOut: () => void): Api {
  const client = createClient<paths>({ baseUrl: "" });
  const auth: Middleware = {
    async onRequest({ request }) {
      const token = await session.token();
      if (token) request.headers.set("authorization", `Bearer ${token}`);
      return request;
    },
    onResponse({ response }) {
      if (response.status === 401) onLoggedOut();
      return response;
    },
  };
  client.use(auth);
  return client;
}
