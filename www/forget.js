// "Forget everything" across the tabs of one lab. The tab that forgets holds the lab's forget lock
// while it tells the other tabs, stops its own engine, waits for the training lock (so the engine
// that saves, in whichever tab, has ended) and clears the store; the other tabs stop their engines
// and reload once the lock is free; a Worker that starts meanwhile waits for it before it reads the
// store. So no tab writes the forgotten session back after the clear, and none goes on with it.

const forgetLock = (dbName) => `${dbName}-forget`;
export const trainingLock = (dbName) => `${dbName}-training`;

// how long an engine gets to end a save in progress before it is ended anyway (a Worker ended
// mid-save leaves the store as it was: the put is one transaction)
const STOP_WAIT_MS = 5_000;

const locks = () => (typeof navigator !== "undefined" && navigator.locks) || null;
// this tab's channel to the others (one object: a channel does not hear its own messages)
let channel = null;

// Resolves once no tab is forgetting this lab (at once where there are no Web Locks).
export function afterForget(dbName) {
  if (!locks()) return Promise.resolve();
  return locks().request(forgetLock(dbName), () => {});
}

// Ends an engine: asks it to stop saving (it may be busy or dead: not for longer than STOP_WAIT_MS),
// then ends its Worker, which releases the training lock if it held it.
async function stopEngine(client) {
  const asked = client.call("forget").catch(() => {});
  await Promise.race([asked, new Promise((resolve) => setTimeout(resolve, STOP_WAIT_MS))]);
  client.stop();
}

// This tab forgets: `clear` empties the store once no engine of this lab runs; then the page reloads.
export async function forgetEverything(dbName, client, clear) {
  if (!locks()) {
    await stopEngine(client);
    await clear();
    return;
  }
  await locks().request(forgetLock(dbName), async () => {
    channel?.postMessage("forget");
    await stopEngine(client);
    await locks().request(trainingLock(dbName), clear);
  });
}

// Another tab forgets: `onForget` runs first (the page stops writing and says why), then this tab's
// engine ends and the page reloads once the other tab has cleared the store.
export function listenForForget(dbName, client, onForget) {
  if (!locks() || typeof BroadcastChannel === "undefined") return;
  channel = new BroadcastChannel(forgetLock(dbName));
  channel.onmessage = async () => {
    onForget();
    await stopEngine(client);
    await afterForget(dbName);
    location.reload();
  };
}
