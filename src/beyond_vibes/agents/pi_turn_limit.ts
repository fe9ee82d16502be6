// beyond-vibes: pi has no max-turns option, so this extension aborts the agent after BV_MAX_TURNS turns.
export default function (pi: any) {
  const max = Number(process.env.BV_MAX_TURNS || "0");
  let turns = 0;
  pi.on("turn_end", async (_event: any, ctx: any) => {
    turns += 1;
    if (max > 0 && turns >= max) {
      if (turns === max) console.error(`beyond-vibes: turn budget of ${max} reached, aborting`);
      ctx.abort();
    }
  });
}
