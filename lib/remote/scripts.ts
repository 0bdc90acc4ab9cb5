/**
 * The programs litekeep runs on the remote host, embedded as strings (the binary has no source
 * tree to read them from). They all speak protocol 1 (see `protocol.ts`); the dispatcher's op
 * `pull2` runs `litekeep agent --protocol 2 pull` instead (see `protocol2.ts`), and without
 * litekeep on the remote answers `LITEKEEP-ERROR noproto2` so the local side falls back to 1:
 *
 * - `DISPATCH` (POSIX sh) picks the tool: litekeep itself (`litekeep agent`), else python3 with
 *   its sqlite3 module, else the sqlite3 CLI; `--remote-tool` forces one.
 * - `PYTHON_AGENT`: snapshot with the backup API in one step (one read transaction), or info.
 * - `SQLITE3_AGENT` (sh + sqlite3 CLI): snapshot with `VACUUM INTO` (one read transaction).
 *
 * Every one of them opens the live database read-only (never checkpoints or changes it), writes
 * its snapshot to a temporary file that it removes on every way out, and reports failures on
 * stderr as `LITEKEEP-ERROR <kind> <message>` with exit code 3.
 *
 * @module
 */
import { shellQuote } from "./ssh.ts";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../limits.ts";

/** The protocol version these scripts and `litekeep agent` speak. */
export const PROTOCOL = 1;

/**
 * Positional arguments: op db tmpdir tool bin compress orderby python sqlite3-script.
 * `orderby` is lines of `table<TAB>column`.
 */
export const DISPATCH = `
op=$1 db=$2 tmpdir=$3 tool=$4 bin=$5 compress=$6 orderby=$7 py=$8 sq=$9
fail() { printf 'LITEKEEP-ERROR %s %s\\n' "$1" "$2" >&2; exit 3; }
case $tool in auto|litekeep)
  if command -v "$bin" >/dev/null 2>&1; then
    # Tells the local side whose stderr it reads if no answer comes (an older litekeep).
    printf 'LITEKEEP-TOOL litekeep\\n' >&2
    # Protocol 2 (protocol2.ts): an older litekeep refuses it with LITEKEEP-ERROR protocol.
    [ "$op" = pull2 ] && exec "$bin" agent --protocol 2 pull "$db" "$tmpdir" "$compress" "$orderby"
    exec "$bin" agent --protocol ${PROTOCOL} "$op" "$db" "$tmpdir" "$compress" "$orderby"
  fi
  [ "$tool" = litekeep ] && fail notool "litekeep ($bin) is not installed on the remote host";;
esac
# Only litekeep speaks protocol 2: say so before anything is opened; the local side asks again
# in protocol 1.
[ "$op" = pull2 ] && fail noproto2 "no litekeep on the remote host to speak protocol 2"
case $tool in auto|python3)
  # -I: isolated, so no module in the remote's working folder ($HOME) is imported instead.
  if command -v python3 >/dev/null 2>&1 && python3 -I -c 'import sqlite3' >/dev/null 2>&1; then
    exec python3 -I -c "$py" "$op" "$db" "$tmpdir" "$compress" "$orderby"
  fi
  [ "$tool" = python3 ] && fail notool "python3 with its sqlite3 module is not installed on the remote host";;
esac
if command -v sqlite3 >/dev/null 2>&1; then
  exec sh -c "$sq" litekeep-sqlite3 "$op" "$db" "$tmpdir" "$orderby"
fi
fail notool "the remote host has neither litekeep, python3 nor sqlite3"
`;

/** Arguments: op db tmpdir compress orderby. */
export const PYTHON_AGENT = `
import hashlib, json, os, signal, sqlite3, struct, sys, tempfile, urllib.parse, zlib

def fail(kind, message):
    sys.stderr.write("LITEKEEP-ERROR %s %s\\n" % (kind, str(message).replace("\\n", " ")))
    sys.exit(3)

def on_signal(*_):
    sys.exit(4)

for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
    signal.signal(s, on_signal)

op, db, tmpdir, compress, orderby = sys.argv[1:6]
order = dict(line.split("\\t", 1) for line in orderby.split("\\n") if "\\t" in line)
out = sys.stdout.buffer

def check_db():
    if not os.path.exists(db):
        fail("notfound", "no such file: " + db)
    if os.path.isdir(db):
        fail("notdb", "it is a folder, not a database file")
    if os.path.getsize(db) == 0:
        fail("empty", "the database is empty (0 bytes)")
    with open(db, "rb") as f:
        if f.read(16) != b"SQLite format 3\\x00":
            fail("notdb", "file is not a SQLite database")

def connect(path):
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=${
  DEFAULT_BUSY_TIMEOUT_MS / 1000
}, isolation_level=None)

def ident(name):
    return '"' + name.replace('"', '""') + '"'

def plain(value):
    # A BLOB as x'<lower-case hex>', as litekeep (valueText) and the sqlite3 script write it.
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "x'" + bytes(value).hex() + "'"
    return value if value is None or isinstance(value, (int, float, str)) else repr(value)

def check_order(conn):
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table, column in order.items():
        if table not in names:
            fail("usage", '--order-by %s.%s: there is no table "%s"' % (table, column, table))
        columns = [r[1] for r in conn.execute("PRAGMA table_info(%s)" % ident(table))]
        if column not in columns:
            fail("usage", '--order-by %s.%s: table "%s" has no column "%s"' % (table, column, table, column))

def tables(conn):
    check_order(conn)
    found = []
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\\\_%' ESCAPE '\\\\' ORDER BY name").fetchall()
    for name, sql in rows:
        if sql and sql.lstrip().upper().startswith("CREATE VIRTUAL"):
            found.append({"name": name, "rows": None, "newest": None})
            continue
        try:
            count = conn.execute("SELECT count(*) FROM " + ident(name)).fetchone()[0]
        except sqlite3.Error:
            count = None
        column = ident(order[name]) if name in order else "rowid"
        if count is None:
            found.append({"name": name, "rows": None, "newest": None})
            continue
        try:
            newest = plain(conn.execute("SELECT max(%s) FROM %s" % (column, ident(name))).fetchone()[0])
        except sqlite3.Error:
            newest = None
        found.append({"name": name, "rows": count, "newest": newest})
    return found

def classify(error):
    text = str(error)
    if "full" in text:
        return "space"
    if "locked" in text or "busy" in text:
        return "busy"
    if "not a database" in text or "malformed" in text:
        return "notdb"
    return "io"

def header(obj):
    out.write(("LITEKEEP ${PROTOCOL} " + json.dumps(obj) + "\\n").encode())

def info():
    # Sizes first: opening the database may create an empty -wal.
    st = os.stat(db)
    wal = db + "-wal"
    wal_size = os.path.getsize(wal) if os.path.exists(wal) else None
    conn = connect(db)
    try:
        fs = os.statvfs(os.path.dirname(os.path.abspath(db)))
        header({
            "tool": "python3", "sqlite": sqlite3.sqlite_version, "path": db, "size": st.st_size,
            "mtime": st.st_mtime, "journalMode": conn.execute("PRAGMA journal_mode").fetchone()[0],
            "pageSize": conn.execute("PRAGMA page_size").fetchone()[0],
            "pageCount": conn.execute("PRAGMA page_count").fetchone()[0],
            "walSize": wal_size,
            "freeBytes": fs.f_bavail * fs.f_frsize, "tables": tables(conn)})
    finally:
        conn.close()

def snapshot(delta):
    # A delta request: "<page size>\\n" then 8 bytes of sha256 per page of the local copy.
    request = sys.stdin.buffer.read() if delta else b""
    local_page_size, _, local_hashes = request.partition(b"\\n")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".litekeep-remote-", suffix=".db", dir=tmpdir or None)
        os.close(fd)
    except OSError as e:
        where = tmpdir or tempfile.gettempdir()
        fail("space" if e.errno == 28 else "tmpdir",
             'cannot create a temporary file in "%s": %s' % (where, e.strerror or e))
    try:
        try:
            src = connect(db)
            journal = src.execute("PRAGMA journal_mode").fetchone()[0]
            dst = sqlite3.connect(tmp, isolation_level=None)
            # One step (pages=-1): one read transaction, so one instant, whatever writers do.
            src.backup(dst)
            dst.close()
            src.close()
        except sqlite3.Error as e:
            fail(classify(e), e)
        except OSError as e:
            fail("space" if e.errno == 28 else "io", e)
        # Rollback-journal mode: the copy is self-contained (no -wal/-shm when opened).
        with open(tmp, "r+b") as f:
            f.seek(18)
            f.write(b"\\x01\\x01")
        conn = connect(tmp)
        try:
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            found = tables(conn)
        finally:
            conn.close()
        size = os.path.getsize(tmp)
        gzip = compress == "gzip"
        header({"tool": "python3", "sqlite": sqlite3.sqlite_version, "journalMode": journal,
                "pageSize": page_size, "pages": pages, "size": size,
                "encoding": "gzip" if gzip else "raw", "framing": "chunked", "tables": found,
                "delta": delta})
        same_size = delta and local_page_size == str(page_size).encode()
        digest = hashlib.sha256()
        packer = zlib.compressobj(1, zlib.DEFLATED, 31) if gzip else None
        def chunk(data):
            if data:
                out.write(b"%x\\n" % len(data))
                out.write(data)
        with open(tmp, "rb") as f:
            number = 0
            while True:
                block = f.read(1 << 20)
                if not block:
                    break
                digest.update(block)
                if delta:
                    # Records of (page number, page) for the pages the local copy lacks.
                    records = []
                    for at in range(0, len(block), page_size):
                        number += 1
                        page = block[at:at + page_size]
                        known = local_hashes[(number - 1) * 8:number * 8]
                        if same_size and known == hashlib.sha256(page).digest()[:8]:
                            continue
                        records.append(struct.pack(">I", number) + page)
                    block = b"".join(records)
                chunk(packer.compress(block) if packer else block)
        if packer:
            chunk(packer.flush())
        out.write(b"0\\n")
        out.write((json.dumps({"sha256": digest.hexdigest()}) + "\\n").encode())
        out.flush()
    finally:
        for suffix in ("", "-journal", "-wal", "-shm"):
            try:
                os.remove(tmp + suffix)
            except OSError:
                pass

check_db()
try:
    if op in ("snapshot", "delta"):
        snapshot(op == "delta")
    elif op == "info":
        info()
    else:
        fail("usage", "unknown operation " + op)
except BrokenPipeError:
    sys.exit(4)
except sqlite3.Error as e:
    fail(classify(e), e)
`;

/** A SQL string literal. */
function sqlText(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * CTEs `e1` .. `e4` after a CTE `e0(v, k, o)`: `e4.v` is `e0.v` written as the inside of a JSON
 * string, with core functions only (`replace`, `char`; old sqlite3 CLIs have no JSON functions),
 * nine `replace` calls a step because SQLite's parser refuses deeper nesting.
 */
function jsonEscapeCtes(): string {
  const pairs: Array<[string, string]> = [[String.raw`'\'`, String.raw`'\\'`], [`'"'`, `'\\"'`]];
  for (let c = 1; c < 32; c++) {
    const escaped = c === 9
      ? String.raw`\t`
      : c === 10
      ? String.raw`\n`
      : c === 13
      ? String.raw`\r`
      : `\\u${c.toString(16).padStart(4, "0")}`;
    pairs.push([`char(${c})`, `'${escaped}'`]);
  }
  const ctes: string[] = [];
  for (let step = 1; pairs.length > 0; step++) {
    let v = "v";
    for (const [from, to] of pairs.splice(0, 9)) v = `replace(${v}, ${from}, ${to})`;
    ctes.push(`e${step}(v, k, o) AS (SELECT ${v}, k, o FROM e${step - 1})`);
  }
  return ctes.join(", ");
}

/** The last of `jsonEscapeCtes()`. */
const ESCAPED = "e4";

/**
 * SQL for the text of value `m` as litekeep writes it (`valueText` in sqlite.ts): a BLOB as
 * x'<lower-case hex>', a whole REAL as an integer (100.0 -> 100), else its text; NULL stays.
 */
function valueText(m: string): string {
  return `CASE WHEN typeof(${m}) = 'blob' THEN 'x''' || lower(hex(${m})) || '''' ` +
    `WHEN typeof(${m}) = 'real' AND ${m} = CAST(${m} AS INTEGER) ` +
    `THEN CAST(CAST(${m} AS INTEGER) AS TEXT) ELSE CAST(${m} AS TEXT) END`;
}

const USER_TABLES = String.raw`type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`;

/** Lines `T<id> <JSON-escaped name>` for every user table, virtual ones included. */
const NAMES_SQL =
  `WITH e0(v, k, o) AS (SELECT name, rowid, name FROM sqlite_master WHERE ${USER_TABLES}), ` +
  `${jsonEscapeCtes()} SELECT 'T' || k || ' ' || v FROM ${ESCAPED} ORDER BY o;`;

/**
 * After a `WITH o(t, c)` of the --order-by pairs: the statements that print `N<id> <rows>` and
 * `M<id> <newest as a JSON token>` for every table that is not virtual (litekeep does not count
 * those either).
 */
const COUNTS_SQL = (() => {
  const ident = `('"' || replace(name, '"', '""') || '"')`;
  const column =
    `coalesce((SELECT '"' || replace(c, '"', '""') || '"' FROM o WHERE o.t = name), 'rowid')`;
  const newest = `;\nWITH e0(v, k, o) AS (SELECT ${valueText("m")}, 0, 0 FROM (SELECT max(`;
  return `SELECT ${sqlText("SELECT 'N")} || rowid || ${sqlText(" ' || count(*) FROM ")} || ` +
    `${ident} || ${sqlText(newest)} || ${column} || ${sqlText(") AS m FROM ")} || ${ident} || ` +
    `${sqlText(`)), ${jsonEscapeCtes()} SELECT 'M`)} || rowid || ` +
    `${sqlText(` ' || coalesce('"' || v || '"', 'null') FROM ${ESCAPED};`)} ` +
    `FROM sqlite_master WHERE ${USER_TABLES} AND sql NOT LIKE 'CREATE VIRTUAL %' ORDER BY name;`;
})();

/** Joins the T/N/M lines into the JSON table list; what is missing is null. */
const TABLES_AWK = String
  .raw`{ kind = substr($1, 1, 1); key = substr($1, 2); rest = substr($0, length($1) + 2) }
kind == "T" { order[++n] = key; name[key] = rest }
kind == "N" { rows[key] = rest }
kind == "M" { newest[key] = rest }
END {
  printf "["
  for (i = 1; i <= n; i++) {
    k = order[i]
    counted = (k in rows)
    printf "%s{\"name\":\"%s\",\"rows\":%s,\"newest\":%s}", (i > 1 ? "," : ""), name[k],
      (counted ? rows[k] : "null"), (counted && (k in newest) ? newest[k] : "null")
  }
  printf "]"
}`;

/** Arguments: op db tmpdir orderby. Needs only sh, coreutils-like tools and the sqlite3 CLI. */
export const SQLITE3_AGENT = `
op=$1 db=$2 tmpdir=\${3:-\${TMPDIR:-/tmp}} orderby=$4
tab=$(printf '\\t')
names_sql=${shellQuote(NAMES_SQL)}
counts_sql=${shellQuote(COUNTS_SQL)}
fail() { printf 'LITEKEEP-ERROR %s %s\\n' "$1" "$2" >&2; exit 3; }
[ -e "$db" ] || fail notfound "no such file: $db"
[ -d "$db" ] && fail notdb "it is a folder, not a database file"
[ -s "$db" ] || fail empty "the database is empty (0 bytes)"
[ "$(head -c 15 "$db")" = "SQLite format 3" ] || fail notdb "file is not a SQLite database"
# -init /dev/null: the user's ~/.sqliterc (.headers on, .mode json) must not change the output.
sql() { sqlite3 -init /dev/null -readonly -batch -cmd ".timeout ${DEFAULT_BUSY_TIMEOUT_MS}" "$@"; }
# JSON string content: control characters dropped, \\ " TAB and newlines escaped.
json() { printf '%s' "$1" | tr -d '\\001-\\010\\013-\\037' | sed -e 's/\\\\/\\\\\\\\/g' -e 's/"/\\\\"/g' -e "s/$tab/\\\\\\\\t/g" | awk 'NR > 1 { printf "%s", "\\\\n" } { printf "%s", $0 }'; }
ident() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
check_order() {
  [ -n "$orderby" ] || return 0
  printf '%s\\n' "$orderby" | while IFS="$tab" read -r t c; do
    [ -n "$t" ] || continue
    known=$(sql "$1" "SELECT count(*) FROM pragma_table_info('$(printf '%s' "$t" | sed "s/'/''/g")') WHERE name = '$(printf '%s' "$c" | sed "s/'/''/g")'" 2>/dev/null) || known=1
    # exit, not return: the loop runs in the pipeline's subshell, whose status is the function's.
    if [ "$known" = 0 ]; then printf '%s' "--order-by $t.$c: no such table or column"; exit 1; fi
  done
}
# The table list in one read transaction, newline-safe: the SQL below writes names and values
# JSON-escaped, one self-identifying line per fact (T: name, N: rows, M: newest), so a table
# whose count or max() fails (WITHOUT ROWID) only lacks that line, as null.
tables() {
  o="WITH o(t, c) AS (VALUES (NULL, NULL)"
  while IFS="$tab" read -r t c; do
    [ -n "$t" ] && o="$o, ('$(printf '%s' "$t" | sed "s/'/''/g")', '$(printf '%s' "$c" | sed "s/'/''/g")')"
  done <<EOF
$orderby
EOF
  { echo 'BEGIN;'; printf '%s\\n' "$names_sql"; sql "$1" "$o) $counts_sql" 2>/dev/null; echo 'COMMIT;'; } |
    sql "$1" 2>/dev/null | awk ${shellQuote(TABLES_AWK)}
}
classify() {
  case $1 in *full*) echo space;; *locked*|*busy*) echo busy;; *"not a database"*|*malformed*) echo notdb;; *) echo io;; esac
}
version=$(sqlite3 -version | cut -d' ' -f1)
bad=$(check_order "$db") || fail usage "$bad"
if [ "$op" = info ]; then
  size=$(wc -c < "$db" | tr -d ' ')
  mtime=$(stat -c %Y "$db" 2>/dev/null || stat -f %m "$db")
  wal=null; [ -f "$db-wal" ] && wal=$(wc -c < "$db-wal" | tr -d ' ')
  free=$(df -Pk "$(dirname "$db")" | awk 'NR == 2 { printf "%.0f", $4 * 1024 }')
  meta=$(sql "$db" "PRAGMA journal_mode; PRAGMA page_size; PRAGMA page_count" 2>&1) || fail "$(classify "$meta")" "$meta"
  set -- $meta
  printf 'LITEKEEP ${PROTOCOL} {"tool":"sqlite3","sqlite":"%s","path":"%s","size":%s,"mtime":%s,"journalMode":"%s","pageSize":%s,"pageCount":%s,"walSize":%s,"freeBytes":%s,"tables":%s}\\n' \\
    "$version" "$(json "$db")" "$size" "$mtime" "$1" "$2" "$3" "$wal" "\${free:-null}" "$(tables "$db")"
  exit 0
fi
[ "$op" = delta ] && fail nodelta "the sqlite3 fallback cannot send only changed pages"
[ "$op" = snapshot ] || fail usage "unknown operation $op"
if ! tmp=$(mktemp "$tmpdir/.litekeep-remote-XXXXXX" 2>/dev/null); then
  [ -d "$tmpdir" ] && [ -w "$tmpdir" ] && fail space "cannot create a temporary file in \\"$tmpdir\\": no space left"
  fail tmpdir "cannot create a temporary file in \\"$tmpdir\\": no such folder, or not writable"
fi
trap 'rm -f "$tmp" "$tmp-journal" "$tmp-wal" "$tmp-shm"' EXIT
trap 'exit 4' HUP INT TERM PIPE
journal=$(sql "$db" "PRAGMA journal_mode" 2>&1) || fail "$(classify "$journal")" "$journal"
# VACUUM INTO reads the database in one transaction: one instant, whatever writers do.
out=$(sql "$db" "VACUUM INTO '$(printf '%s' "$tmp" | sed "s/'/''/g")'" 2>&1) || fail "$(classify "$out")" "$out"
printf '\\001\\001' | dd of="$tmp" bs=1 seek=18 conv=notrunc 2>/dev/null
meta=$(sql "$tmp" "PRAGMA page_size; PRAGMA page_count" 2>&1) || fail io "$meta"
set -- $meta
size=$(wc -c < "$tmp" | tr -d ' ')
sum=$( (sha256sum "$tmp" 2>/dev/null || shasum -a 256 "$tmp" 2>/dev/null) | cut -d' ' -f1)
if [ -n "$sum" ]; then sum="\\"$sum\\""; else sum=null; fi
printf 'LITEKEEP ${PROTOCOL} {"tool":"sqlite3","sqlite":"%s","journalMode":"%s","pageSize":%s,"pages":%s,"size":%s,"encoding":"raw","framing":"sized","tables":%s}\\n' \\
  "$version" "$journal" "$1" "$2" "$size" "$(tables "$tmp")"
cat "$tmp" || exit 4
printf '{"sha256":%s}\\n' "$sum"
`;
