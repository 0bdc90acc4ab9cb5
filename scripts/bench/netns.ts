/**
 * A shaped link for the over-ssh benchmarks: a network namespace (the "Pi") joined to the host
 * by a veth pair, with a token-bucket filter (`tc tbf`) limiting the rate. The kernel here has no
 * `netem`, so there is no added delay or loss: only the bandwidth of a LAN or Wi-Fi link.
 *
 * Only the namespace and the veth pair made here are touched, and only private addresses on
 * them; disposing removes both, also after a failure halfway through creating them.
 *
 * @module
 */

/** How to make the link. */
export interface LinkOptions {
  /** Name of the namespace; the veths are `<name>-h` (host side) and `<name>-n`. */
  name: string;
  /** Rate in Mbit/s, both directions; null for an unshaped veth. */
  rateMbit: number | null;
  /** @default "10.231.0.1" */
  hostAddress?: string;
  /** @default "10.231.0.2" */
  nsAddress?: string;
}

/** Bytes that crossed the link, read from the host-side veth. */
export interface LinkBytes {
  /** Namespace to host (the data of a pull). */
  down: number;
  /** Host to namespace (requests, acknowledgements, delta page hashes). */
  up: number;
}

/** A shaped link, removed on dispose. */
export interface ShapedLink extends AsyncDisposable {
  name: string;
  /** The namespace's address: where its sshd listens. */
  nsAddress: string;
  /** The command prefix that runs a program inside the namespace. */
  wrap: string[];
  /** The current rate in Mbit/s, or null when unshaped. */
  rateMbit: number | null;
  /** Changes the shaping of both directions. */
  setRate(mbit: number | null): Promise<void>;
  /** The byte counters now; subtract two readings for a transfer. */
  bytes(): Promise<LinkBytes>;
  /** Removes the namespace and the veth pair (idempotent). */
  remove(): Promise<void>;
  /**
   * The same, synchronously, for a signal handler that must exit right after. The kernel frees
   * the namespace (and its veth) once no process is left in it: stop its sshd too.
   */
  removeSync(): void;
}

async function ip(args: string[], okCodes = [0]): Promise<string> {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stderr).trim();
  if (!okCodes.includes(out.code)) throw new Error(`ip ${args.join(" ")}: ${text}`);
  return new TextDecoder().decode(out.stdout);
}

async function tc(inNs: string | null, args: string[]): Promise<void> {
  const argv = inNs === null ? args : ["netns", "exec", inNs, "tc", ...args];
  const out = await new Deno.Command(inNs === null ? "tc" : "ip", {
    args: argv,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`tc ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/**
 * The tbf arguments for `mbit`. The bucket holds 256 KiB (what a 100 Mbit/s link drains in
 * 21 ms), and packets wait at most 50 ms in the queue before tbf drops them, which TCP answers by
 * slowing down, as on a real link.
 */
export function tbfArgs(dev: string, mbit: number): string[] {
  return [
    "qdisc",
    "replace",
    "dev",
    dev,
    "root",
    "tbf",
    "rate",
    `${mbit}mbit`,
    "burst",
    "256kb",
    "latency",
    "50ms",
  ];
}

/**
 * Creates namespace `name` with a veth pair to the host, addresses on both ends, lo and the
 * veths up, and the rate applied to both directions (the namespace side's egress carries the
 * pulled data).
 *
 * @throws {Error} when not root, when the kernel refuses, or when `name` already exists (a
 *   leftover of a killed run: remove it with `ip netns del NAME`)
 */
export async function createShapedLink(options: LinkOptions): Promise<ShapedLink> {
  const { name } = options;
  const hostAddress = options.hostAddress ?? "10.231.0.1";
  const nsAddress = options.nsAddress ?? "10.231.0.2";
  const hostIf = `${name}-h`;
  const nsIf = `${name}-n`;
  if ((await ip(["netns", "list"])).split("\n").some((l) => l.split(" ")[0] === name)) {
    throw new Error(
      `Network namespace "${name}" already exists: a leftover of an interrupted run? ` +
        `Remove it with "ip netns del ${name}"`,
    );
  }
  let removed = false;
  const remove = async () => {
    if (removed) return;
    removed = true;
    // Deleting the namespace deletes its veth end, and with it the host end; the second
    // command is for a failure between "link add" and moving the end into the namespace.
    await ip(["netns", "del", name], [0, 1]);
    await ip(["link", "del", hostIf], [0, 1]);
  };
  const removeSync = () => {
    if (removed) return;
    removed = true;
    for (const args of [["netns", "del", name], ["link", "del", hostIf]]) {
      new Deno.Command("ip", { args, stdout: "null", stderr: "null" }).outputSync();
    }
  };
  const inNs = (args: string[]) => ip(["-n", name, ...args]);
  const link: ShapedLink = {
    name,
    nsAddress,
    wrap: ["ip", "netns", "exec", name],
    rateMbit: null,
    async setRate(mbit) {
      for (const [ns, dev] of [[name, nsIf], [null, hostIf]] as const) {
        if (mbit === null) {
          if (link.rateMbit !== null) await tc(ns, ["qdisc", "del", "dev", dev, "root"]);
        } else await tc(ns, tbfArgs(dev, mbit));
      }
      link.rateMbit = mbit;
    },
    async bytes() {
      const read = async (what: string) =>
        Number(await Deno.readTextFile(`/sys/class/net/${hostIf}/statistics/${what}`));
      // The host end receives what the namespace sends.
      return { down: await read("rx_bytes"), up: await read("tx_bytes") };
    },
    remove,
    removeSync,
    [Symbol.asyncDispose]: remove,
  };
  try {
    await ip(["netns", "add", name]);
    await ip(["link", "add", hostIf, "type", "veth", "peer", "name", nsIf]);
    await ip(["link", "set", nsIf, "netns", name]);
    await ip(["addr", "add", `${hostAddress}/24`, "dev", hostIf]);
    await inNs(["addr", "add", `${nsAddress}/24`, "dev", nsIf]);
    await ip(["link", "set", hostIf, "up"]);
    await inNs(["link", "set", nsIf, "up"]);
    await inNs(["link", "set", "lo", "up"]);
    await link.setRate(options.rateMbit);
  } catch (error) {
    await remove();
    throw error;
  }
  return link;
}
