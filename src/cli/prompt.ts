/** Reads a y/N answer from the terminal, as docker's prompts do (anything but y/yes is no). */
export async function confirm(question: string): Promise<boolean> {
  process.stdout.write(`${question} [y/N] `);
  for await (const chunk of process.stdin) {
    process.stdin.pause();
    return /^y(es)?$/i.test(String(chunk).trim());
  }
  return false;
}
