// One scenario of everyday redis use, run by tests/e2e/test_clients.py with a
// Node.js client and its DEFAULT options, against redis-server directly and
// through the proxy: the two outputs (JSON on stdout) must be the same.
//
//   node scenario.js <ioredis|node-redis> <host> <port> <key prefix>
//
// Keys a transaction touches share a hash tag ({t}), so they are on one server
// of a sharded pool, as a user of the proxy (or of redis cluster) writes them.
"use strict";

const [, , which, host, portText, prefix] = process.argv;
const port = Number(portText);
const k = (name) => `${prefix}:${name}`;
const tagged = (name) => `${prefix}:{t}:${name}`;

const RELEASE_LOCK = `if redis.call("get", KEYS[1]) == ARGV[1] then
  return redis.call("del", KEYS[1]) else return 0 end`;

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function ioredisScenario() {
  const Redis = require("ioredis");
  const r = new Redis({ host, port });
  r.defineCommand("releaseLock", { numberOfKeys: 1, lua: RELEASE_LOCK });
  const out = {};
  out.strings = [
    await r.set(k("s"), "hello"),
    await r.get(k("s")),
    await r.append(k("s"), " world"),
    await r.incr(k("n")),
    await r.incrby(k("n"), 41),
    await r.mset(k("m1"), "a", k("m2"), "b", k("m3"), "c"),
    await r.mget(k("m1"), k("m2"), k("m3"), k("missing")),
    await r.del(k("m1"), k("m2"), k("missing")),
  ];
  out.hashes = [
    await r.hset(k("h"), "f1", "v1", "f2", "v2"),
    await r.hincrby(k("h"), "f3", 7),
    await r.hgetall(k("h")),
  ];
  out.lists = [
    await r.rpush(k("l"), "a", "b", "c"),
    await r.lpop(k("l")),
    await r.lrange(k("l"), 0, -1),
  ];
  out.sets = [await r.sadd(k("set"), "x", "y", "z", "x"), (await r.smembers(k("set"))).sort()];
  out.zsets = [
    await r.zadd(k("z"), 1, "one", 2, "two"),
    await r.zincrby(k("z"), 5, "one"),
    await r.zrange(k("z"), 0, -1, "WITHSCORES"),
  ];
  out.transaction = await r
    .multi()
    .set(tagged("a"), "1")
    .incr(tagged("a"))
    .get(tagged("a"))
    .exec();
  out.pipeline = await r.pipeline().set(k("p1"), "x").get(k("p1")).exec();
  const token = "tok-ioredis";
  out.lock = [
    await r.set(k("lock"), token, "PX", 10000, "NX"),
    await r.set(k("lock"), "other", "PX", 10000, "NX"),
    await r.releaseLock(k("lock"), "other"),
    await r.releaseLock(k("lock"), token),
  ];
  const keys = [];
  await new Promise((resolve, reject) => {
    const s = r.scanStream({ match: `${prefix}:*`, count: 10 });
    s.on("data", (batch) => keys.push(...batch));
    s.on("end", resolve);
    s.on("error", reject);
  });
  out.scan = [...new Set(keys)].sort();
  out.scanDuplicates = keys.length - out.scan.length;
  out.pubsub = await ioredisPubsub(r);
  r.disconnect();
  return out;
}

async function ioredisPubsub(r) {
  const sub = r.duplicate();
  const got = new Promise((resolve) => sub.on("message", (ch, msg) => resolve([ch, msg])));
  const count = await sub.subscribe(k("chan"));
  const receivers = await r.publish(k("chan"), "ping");
  const message = await withTimeout(got, 5000, "ioredis message");
  sub.disconnect();
  return [count, receivers, message];
}

async function nodeRedisScenario() {
  const { createClient, defineScript } = require("redis");
  const r = createClient({
    url: `redis://${host}:${port}`,
    scripts: {
      releaseLock: defineScript({
        NUMBER_OF_KEYS: 1,
        SCRIPT: RELEASE_LOCK,
        parseCommand(parser, key, token) {
          parser.pushKey(key);
          parser.push(token);
        },
        transformReply: (x) => x,
      }),
    },
  });
  r.on("error", () => {});
  await withTimeout(r.connect(), 5000, "node-redis connect");
  const out = {};
  out.strings = [
    await r.set(k("s"), "hello"),
    await r.get(k("s")),
    await r.append(k("s"), " world"),
    await r.incr(k("n")),
    await r.incrBy(k("n"), 41),
    await r.mSet([k("m1"), "a", k("m2"), "b", k("m3"), "c"]),
    await r.mGet([k("m1"), k("m2"), k("m3"), k("missing")]),
    await r.del([k("m1"), k("m2"), k("missing")]),
  ];
  out.hashes = [
    await r.hSet(k("h"), { f1: "v1", f2: "v2" }),
    await r.hIncrBy(k("h"), "f3", 7),
    await r.hGetAll(k("h")),
  ];
  out.lists = [
    await r.rPush(k("l"), ["a", "b", "c"]),
    await r.lPop(k("l")),
    await r.lRange(k("l"), 0, -1),
  ];
  out.sets = [await r.sAdd(k("set"), ["x", "y", "z", "x"]), (await r.sMembers(k("set"))).sort()];
  out.zsets = [
    await r.zAdd(k("z"), [
      { score: 1, value: "one" },
      { score: 2, value: "two" },
    ]),
    await r.zIncrBy(k("z"), 5, "one"),
    await r.zRangeWithScores(k("z"), 0, -1),
  ];
  out.transaction = await r.multi().set(tagged("a"), "1").incr(tagged("a")).get(tagged("a")).exec();
  out.pipeline = await r.multi().set(k("p1"), "x").get(k("p1")).execAsPipeline();
  const token = "tok-node-redis";
  out.lock = [
    await r.set(k("lock"), token, { PX: 10000, NX: true }),
    await r.set(k("lock"), "other", { PX: 10000, NX: true }),
    await r.releaseLock(k("lock"), "other"),
    await r.releaseLock(k("lock"), token),
  ];
  const keys = [];
  for await (const batch of r.scanIterator({ MATCH: `${prefix}:*`, COUNT: 10 })) {
    keys.push(...(Array.isArray(batch) ? batch : [batch]));
  }
  out.scan = [...new Set(keys)].sort();
  out.scanDuplicates = keys.length - out.scan.length;
  out.pubsub = await nodeRedisPubsub(r);
  await r.quit();
  return out;
}

async function nodeRedisPubsub(r) {
  const sub = r.duplicate();
  sub.on("error", () => {});
  await sub.connect();
  let deliver;
  const got = new Promise((resolve) => (deliver = resolve));
  await sub.subscribe(k("chan"), (message, channel) => deliver([channel, message]));
  const receivers = await r.publish(k("chan"), "ping");
  const message = await withTimeout(got, 5000, "node-redis message");
  await sub.quit();
  return [receivers, message];
}

const scenarios = { ioredis: ioredisScenario, "node-redis": nodeRedisScenario };

withTimeout(scenarios[which](), 30000, which)
  .then((out) => {
    process.stdout.write(JSON.stringify(out) + "\n");
    process.exit(0);
  })
  .catch((err) => {
    process.stderr.write(`${which}: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
