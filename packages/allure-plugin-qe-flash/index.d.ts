/** Options of the qe-flash Allure 3 plugin. */
export interface QEFlashPluginOptions {
  /** Test folders or files to read (default: test/, tests/, __tests__/ or spec/ in the working folder). */
  tests?: string | string[];
  /** Near-duplicate pairs at or above this cosine similarity (default 0.9). */
  threshold?: number;
  /** A qe-flash benchmark results JSON to draw. */
  bench?: string;
  title?: string;
}
/** Structural subsets of @allurereport/plugin-api's PluginContext and AllureStore, so this package needs none of Allure at install time. */
export interface QEFlashPluginContext {
  id: string;
  reportName?: string;
  reportFiles: { addFile(path: string, data: Uint8Array): Promise<string> };
}
export interface QEFlashPluginStore {
  allTestResults(): Promise<{ name: string; status?: string }[]>;
}
export default class QEFlashPlugin {
  constructor(options?: QEFlashPluginOptions);
  done(context: QEFlashPluginContext, store: QEFlashPluginStore): Promise<void>;
  info(context: QEFlashPluginContext): Promise<{ name: string; href: string; status: string; stats: Record<string, number> } | undefined>;
}
