import { InputError, type ModelMeta, type ModelPredictor, type TileBatch, type TileOutputs } from '../core/index.ts';

/**
 * A head trained on features imported from CLAM or TRIDENT. Its inputs cannot be computed from pixels in
 * gradelab, so it scores tiles only through the embedding cache of a dataset that holds those features
 * (workflows' modelOutputs); asked to run on pixels it says so in one line.
 */
export class ImportedFeaturesHead implements ModelPredictor {
  readonly k: number;
  readonly engine: string;

  constructor(
    private readonly dir: string,
    readonly meta: ModelMeta & { importedFeatures: NonNullable<ModelMeta['importedFeatures']> },
  ) {
    this.k = meta.classes.length;
    this.engine = `head on imported ${meta.importedFeatures.tool} features "${meta.importedFeatures.name}"`;
  }

  private refuse(): never {
    const f = this.meta.importedFeatures;
    throw new InputError(
      `${this.dir}: a head on ${f.tool} features "${f.name}" scores only datasets that hold those features (gradelab dataset import --from ${f.tool} ... --features DIR); it cannot run on pixels`,
    );
  }

  async run(_batch: TileBatch): Promise<TileOutputs> {
    return this.refuse();
  }

  async predict(_batch: TileBatch): Promise<Float32Array> {
    return this.refuse();
  }

  dispose(): void {}
}
