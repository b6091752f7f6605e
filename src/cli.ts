/**
 * `npm run weir -- <command> [args]`: operator commands. Each command is a module in src/cli/
 * exporting `run(args: string[]): Promise<number>` (the exit code) and a one-line `summary`.
 */
const commands: Record<string, () => Promise<{ run(args: string[]): Promise<number>; summary: string }>> = {
  audit: () => import('./cli/audit.js'),
  bootstrap: () => import('./cli/bootstrap.js'),
  client: () => import('./cli/client.js'),
  policy: () => import('./cli/policy.js'),
};

async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  const load = name ? commands[name] : undefined;
  if (!load) {
    const list = await Promise.all(Object.entries(commands).map(async ([n, l]) => `  ${n.padEnd(16)} ${(await l()).summary}`));
    console.error(`Usage: npm run weir -- <command> [args]\n\nCommands:\n${list.join('\n') || '  (none yet)'}`);
    process.exit(name ? 2 : 0);
  }
  process.exit(await (await load()).run(args));
}

await main();
