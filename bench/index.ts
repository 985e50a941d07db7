/**
 * `npm run bench`: runs the benchmarks and prints their table. Sizes come from the environment
 * (see bench/revision-plan.ts), e.g. `BENCH_FILES=2000 BENCH_MB=50 npm run bench`.
 */
import * as os from "node:os";
import { benchRevisionPlan, formatBench } from "./revision-plan";

async function main(): Promise<void> {
  const rows = await benchRevisionPlan(process.env);
  console.log(
    `gitops-rings bench: node ${process.version}, ${os.cpus().length} cpus (${os.cpus()[0]?.model ?? "?"}), ${os.platform()}`,
  );
  console.log(formatBench(rows));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
