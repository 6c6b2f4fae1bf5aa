/**
 * A progress bar (cli-progress) on stderr for work that runs longer than about a
 * second: it appears only when stderr is a terminal and only once 1 s has passed,
 * so short commands and scripted use (pipes, files, CI) print nothing extra.
 * tick() is cheap enough for a per-entry call inside a synchronous walk: it looks
 * at the clock once every 256 calls, and cli-progress redraws synchronously.
 */
import cliProgress from 'cli-progress'

const DELAY_MS = 1000

export class Progress {
  private bar: cliProgress.SingleBar | undefined
  private readonly started = Date.now()
  private calls = 0
  private readonly enabled: boolean

  /** total 0 = unknown (the bar shows the count only). unit: 'entries', 'bytes', … */
  constructor(
    private readonly label: string,
    private total: number,
    private readonly unit: string,
  ) {
    this.enabled = process.stderr.isTTY === true && process.env.PERSIST_NO_PROGRESS === undefined
  }

  tick(value: number): void {
    if (!this.enabled) return
    if (this.bar) {
      this.bar.update(value)
      return
    }
    if ((++this.calls & 255) !== 0 || Date.now() - this.started < DELAY_MS) return
    const known = this.total > 0
    this.bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: known
          ? `${this.label} [{bar}] {percentage}% | {value}/{total} ${this.unit} | ETA {eta_formatted}`
          : `${this.label} {value} ${this.unit}`,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    )
    this.bar.start(known ? this.total : 0, value)
  }

  setTotal(total: number): void {
    this.total = total
    this.bar?.setTotal(total)
  }

  stop(): void {
    this.bar?.stop()
    this.bar = undefined
  }
}
