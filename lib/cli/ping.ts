/**
 * Health pings, the dead man's switch of a cron job (healthchecks.io's convention): `URL/start`
 * when the job starts, `URL` when it succeeds, `URL/<exit code>` when it fails, each a POST whose
 * body is the tail of what the run wrote (at most `PING_BODY_MAX` bytes: the error and its hint
 * are the last lines). A ping is a courtesy to the monitor, never part of the job: one that fails
 * or times out is a warning, and the job's exit code stays its own.
 *
 * @module
 */
import { describeCause, UsageError } from "../errors.ts";

/** How long one ping may take, answer included. */
export const PING_TIMEOUT_MS = 10_000;

/** The most of the run's output a ping carries (healthchecks.io keeps 10 KB of a body). */
export const PING_BODY_MAX = 10_000;

/**
 * Checks a ping URL: http or https, nothing else.
 *
 * @param from where it came from, for the message (`--ping`, or the config key)
 * @throws {UsageError} when it is not an http(s) URL
 */
export function parsePingUrl(text: string, from: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${from}: "${text}" is not a URL`, {
      hint: "give the check's ping URL, e.g. https://hc-ping.com/<uuid>",
    });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`${from}: "${redactUrl(url)}" is not an http or https URL`, {
      hint: "give the check's ping URL, e.g. https://hc-ping.com/<uuid>",
    });
  }
  return url;
}

/**
 * The URL as a log may show it: no user, password, query or fragment (where secrets and
 * tokens go). The path stays: it says which check was pinged.
 */
export function redactUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/** `URL` with `/suffix` added to its path (the query stays, after it). */
export function pingUrl(base: URL, suffix: string): URL {
  const url = new URL(base.href);
  if (suffix !== "") url.pathname = `${url.pathname.replace(/\/+$/, "")}/${suffix}`;
  return url;
}

/** What a run's pings need: the URL, and where to say that one failed. */
export interface PingerOptions {
  url: URL;
  warn: (message: string) => void;
  /** @default PING_TIMEOUT_MS */
  timeoutMs?: number;
}

/** The pings of one run. */
export interface Pinger {
  /** `URL/start`. */
  start(): Promise<void>;
  /** `URL` for exit code 0, `URL/<code>` otherwise, with `body`. */
  finish(code: number, body: string): Promise<void>;
}

/**
 * Creates the pinger of one run. Once a ping has timed out, the run pings that host no more:
 * a monitor that does not answer in 10 s would otherwise hold a cron job up 10 s more at its
 * end, and the check's missing success ping is what alerts about it.
 */
export function createPinger(options: PingerOptions): Pinger {
  const timeoutMs = options.timeoutMs ?? PING_TIMEOUT_MS;
  let timedOut = false;
  async function send(suffix: string, body: string): Promise<void> {
    const url = pingUrl(options.url, suffix);
    const shown = redactUrl(url);
    if (timedOut) {
      options.warn(`ping ${shown} not sent: the host did not answer the last one`);
      return;
    }
    try {
      const response = await fetch(url, {
        method: "POST",
        body,
        headers: { "content-type": "text/plain; charset=utf-8" },
        signal: AbortSignal.timeout(timeoutMs),
        // A redirect would send the run's log to wherever it points, another host included:
        // the user's URL is the only place a ping goes.
        redirect: "manual",
      });
      // The status is the answer; the body is not read (one that never ends would fill the
      // memory until the timeout), only dropped, which frees the connection.
      await response.body?.cancel().catch(() => {});
      if (response.status >= 300 && response.status < 400) {
        const location = response.headers.get("location");
        let to = "";
        try {
          if (location !== null) to = ` (a redirect to ${redactUrl(new URL(location, url))})`;
        } catch {
          // a Location that is no URL: said without it
        }
        options.warn(
          `ping ${shown} answered ${response.status}${to}; pings are not redirected: give ` +
            "the URL it points to (the job's result is unchanged)",
        );
      } else if (!response.ok) {
        options.warn(
          `ping ${shown} answered ${response.status} ${response.statusText}`.trimEnd() +
            " (the job's result is unchanged)",
        );
      }
    } catch (error) {
      const timeout = error instanceof DOMException && error.name === "TimeoutError";
      if (timeout) timedOut = true;
      const why = timeout ? `no answer within ${timeoutMs / 1000} s` : pingCause(error);
      options.warn(`ping ${shown} failed: ${why} (the job's result is unchanged)`);
    }
  }
  return {
    start: () => send("start", ""),
    finish: (code, body) => send(code === 0 ? "" : String(code), body),
  };
}

/** Why fetch failed, in one line, without the URL's secrets (Deno's messages quote the URL). */
function pingCause(error: unknown): string {
  const inner = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const text = describeCause(inner);
  if (/connection refused/i.test(text)) return "connection refused";
  if (/dns error|failed to lookup|name or service not known/i.test(text)) {
    return "host name not found";
  }
  // Whatever else, cut at the first URL-like part so no query string leaks.
  return text.replace(/\S+:\/\/\S*/g, "<url>");
}

/** Keeps the last `max` bytes written: what a ping's body carries. */
export class OutputTail {
  #chunks: string[] = [];
  #length = 0;
  #cut = false;
  constructor(private readonly max: number = PING_BODY_MAX) {}
  /** Adds text as the run wrote it (progress redraws are left out). */
  add(text: string): void {
    // A redraw (lib/cli/log.ts) starts with "\r\x1b[K"; a line that merely holds a "\r" stays.
    if (text.startsWith("\r\x1b[K")) return;
    this.#chunks.push(text);
    this.#length += text.length;
    while (this.#length > this.max && this.#chunks.length > 1) {
      this.#length -= this.#chunks.shift()!.length;
      this.#cut = true;
    }
  }
  /** The tail, at most `max` characters, cut at a line start when it had to cut. */
  text(): string {
    let all = this.#chunks.join("");
    let cut = this.#cut;
    if (all.length > this.max) {
      all = all.slice(all.length - this.max);
      cut = true;
    }
    if (cut) {
      const newline = all.indexOf("\n");
      if (newline >= 0 && newline < all.length - 1) all = all.slice(newline + 1);
      all = `[earlier output cut]\n${all}`;
    }
    return all;
  }
}
