/** A mounted view: it polls until disposed (the address changed). */
export interface View {
  /** Settles once the view shows its first data. */
  ready: Promise<void>;
  dispose(): void;
}
