import { existsSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { MODEL_FILES, modelFile, sha256File } from '../core/index.ts';
import { loadSplit, openTileDataset, partitionOf } from '../data/index.ts';
import { readSeedsFile, type SeedsFile } from '../eval/index.ts';
import { est } from './evidence.ts';
import { chartIf, section, type ReportSection } from './document.ts';
import { provenanceTags } from '../track/index.ts';
import type { ReportInputs } from './inputs.ts';

// The report's sections on what the model is: its use, data, reference standard, training, traceability.

const need = (s: ReportSection, ok: unknown, what: string, how: string) => {
  if (!ok) s.missing.push(`${what} (${how})`);
};

/** A path as the report shows it: relative to the report's own folder, never a machine's absolute path. */
export function shownPath(inp: Pick<ReportInputs, 'outDir'>, path: string): string {
  return relative(resolve(inp.outDir), resolve(path)).split(sep).join('/') || '.';
}

/** The model's training dataset: the folder gradelab.json records (relative to the model), else the config's. */
export function trainingDataset(inp: Pick<ReportInputs, 'meta' | 'modelDir' | 'config'>): string | undefined {
  return inp.meta.dataset ? join(inp.modelDir, inp.meta.dataset) : inp.config?.data?.dataset;
}

/** 1: what the model is for, for whom, where in the workflow, and what it must not be given. */
export function identitySection(inp: ReportInputs): ReportSection {
  const { meta, use, modelDir } = inp;
  const id = section('intended-use', 'Identity and intended use');
  id.facts.push(
    ['Model', `${meta.backbone} (width ${meta.width}), ${meta.head} head, ${meta.task} grading: classes ${meta.classes.join(', ')}`],
    ['Model directory (relative to this report)', shownPath(inp, modelDir)],
    ['Trained', meta.trainedAt],
  );
  if (use.intendedUse) id.text.push(use.intendedUse);
  need(id, use.intendedUse, 'intended use', 'intendedUse in --intended-use YAML');
  if (use.users) id.facts.push(['Users', use.users]);
  need(id, use.users, 'intended users', 'users');
  if (use.workflowPosition) id.facts.push(['Position in the workflow', use.workflowPosition]);
  need(id, use.workflowPosition, 'workflow position', 'workflowPosition');
  if (use.outOfScope?.length) id.tables.push({ caption: 'Out-of-scope inputs', header: ['input'], rows: use.outOfScope.map((o) => [o]) });
  need(id, use.outOfScope?.length, 'out-of-scope inputs', 'outOfScope');
  if (meta.scope) {
    id.facts.push([
      'Validated acquisition (enforced)',
      `scanners ${meta.scope.scanners.join(', ')}; sites ${meta.scope.sites.join(', ')}; tiles of ${meta.tileSize} px at ${meta.mpp} um/px`,
    ]);
    // predict, eval, heatmap and audit mark every slide outside it; the evaluation's count is stated here.
    const rows = inp.predictions?.rows ?? [];
    const outside = rows.filter((r) => r.extra.in_scope === 'no');
    if (rows.some((r) => r.extra.in_scope !== undefined))
      id.text.push(
        `Predict, eval, heatmap and audit mark every slide outside this acquisition (another scanner, or flagged out of distribution) as out of scope, with the reason. In the evaluation: ${outside.length} of ${rows.length} slides outside${outside.length ? ` (${[...new Set(outside.map((r) => r.extra.scope_note))].slice(0, 3).join('; ')})` : ''}.`,
      );
  } else id.missing.push('the validated acquisition (models trained before gradelab 0.2 record no scanners; retrain to record them)');
  return id;
}

/** 2: the training dataset, its patient-grouped partitions and slides per grade and site. */
export async function dataSection(inp: ReportInputs): Promise<ReportSection> {
  const { config, use } = inp;
  const data = section('data', 'Data');
  const dsPath = trainingDataset(inp);
  if (dsPath && existsSync(join(dsPath, 'dataset.json'))) {
    const ds = await openTileDataset(dsPath);
    const split = existsSync(join(dsPath, 'splits.json')) ? await loadSplit(dsPath) : undefined;
    const fold = config?.data?.fold ?? 0;
    data.facts.push(
      ['Dataset (relative to this report)', shownPath(inp, dsPath)],
      ['Dataset SHA-256 (tile table and tiling settings)', ds.meta.sha256 ?? 'n/a'],
      ['Manifest SHA-256', ds.meta.manifestSha256],
      [
        'Tiles',
        `${ds.meta.tileSize} px at ${ds.meta.mpp} um/px, stride ${ds.meta.stride}, minimum tissue ${ds.meta.minTissue}, ${ds.meta.tissueMethod} tissue detection`,
      ],
    );
    if (use.inclusionRules) data.facts.push(['Inclusion rules', use.inclusionRules]);
    if (split) {
      const parts = ['train', 'val', 'test'] as const;
      const rows = parts.map((p) => {
        const tiles = ds.tiles.filter((t) => partitionOf(split, t.patientId, fold) === p);
        return [
          p,
          String(new Set(tiles.map((t) => t.patientId)).size),
          String(new Set(tiles.map((t) => t.slideId)).size),
          String(tiles.length),
          [...new Set(tiles.map((t) => t.site))].sort().join(', '),
        ];
      });
      data.tables.push({
        caption: `Partitions (patient-grouped ${split.folds}-fold split, seed ${split.seed}; test fold ${fold})`,
        header: ['partition', 'patients', 'slides', 'tiles', 'sites'],
        rows,
      });
    }
    const slides = new Map(ds.tiles.map((t) => [t.slideId, t]));
    const grades = [...new Set([...slides.values()].map((t) => (t.grade === undefined ? 'unlabelled' : String(t.grade))))].sort();
    data.tables.push({
      caption: 'Slides per grade and site',
      header: ['grade', ...[...new Set([...slides.values()].map((t) => t.site))].sort()],
      rows: grades.map((g) => [
        g,
        ...[...new Set([...slides.values()].map((t) => t.site))]
          .sort()
          .map((s) => String([...slides.values()].filter((t) => t.site === s && String(t.grade ?? 'unlabelled') === g).length)),
      ]),
    });
    const anomalies = [...slides.values()].filter((t) => t.anomaly);
    data.facts.push(
      ['Scanners', [...new Set([...slides.values()].map((t) => t.scanner))].sort().join(', ')],
      [
        'Slides with anomalies (excluded from grading, used for OOD)',
        `${anomalies.length}: ${[...new Set(anomalies.map((t) => t.anomaly))].sort().join(', ')}`,
      ],
    );
  } else data.missing.push('the training dataset (the model directory has no config.yaml naming an existing dataset)');
  return data;
}

/** 3: how the reference grades were set and how far raters agree. */
export function referenceSection(inp: ReportInputs): ReportSection {
  const { metrics, use } = inp;
  const ref = section('reference-standard', 'Reference standard');
  if (use.referenceStandard) ref.text.push(use.referenceStandard);
  need(ref, use.referenceStandard, 'reference standard', 'referenceStandard');
  if (metrics?.agreement)
    ref.tables.push({
      caption: 'Inter-rater agreement',
      header: ['pair', 'kappa', 'QWK'],
      rows: metrics.agreement.pairwise.map((p) => [`${p.a} vs ${p.b}`, p.kappa.toFixed(3), p.qwk.toFixed(3)]),
    });
  else ref.text.push('No rater columns in the evaluation data: inter-rater agreement not available.');
  return ref;
}

/** 4: architecture, initialisation, selection rule, seed, training settings and curves. */
export function modelSection(inp: ReportInputs): ReportSection {
  const { config, meta, modelDir } = inp;
  const mdl = section('model', 'Model and training');
  mdl.facts.push(
    ['Architecture', `${meta.backbone}, width ${meta.width}, input ${meta.inputSize} px, ${meta.head} head`],
    ['Initialisation', config?.model?.init ? `fine-tuned from ${config.model.init}` : 'random (seeded He-normal)'],
    ['Selection rule', `best validation QWK (slide level, mean-pooled tiles); best epoch ${meta.bestEpoch}`],
    ['Seed', String(meta.seed)],
    ['Backend', meta.backend],
  );
  if (config?.train)
    mdl.facts.push([
      'Training',
      Object.entries(config.train)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ]);
  mdl.facts.push(['Augmentation', JSON.stringify(meta.augment)]);
  if (existsSync(modelFile(modelDir, 'seeds'))) {
    const s = readSeedsFile(modelDir);
    const spread = (x: SeedsFile['val']) =>
      `${x.mean.toFixed(3)} +/- ${x.sd.toFixed(3)} (across seeds, 95% CI of the mean ${x.ci95[0].toFixed(3)} to ${x.ci95[1].toFixed(3)}; range ${x.min.toFixed(3)}-${x.max.toFixed(3)})`;
    mdl.text.push(
      `The head was trained with ${s.seeds} seeds on the same cached embeddings (the model is seed ${s.runs[0].seed}'s). Validation QWK ${spread(s.val)}${s.test ? `; test-partition QWK on ${s.testSlides} slides ${spread(s.test)}` : ''}${s.firstSeedTestBootstrap ? `, against the patient-bootstrap interval of one seed's test QWK ${est(s.firstSeedTestBootstrap)}` : ''}: the first is what a rerun would move, the second what other cases would.`,
    );
    mdl.tables.push({
      caption: 'Heads by seed',
      header: ['seed', 'best epoch', 'validation QWK', 'test QWK'],
      rows: s.runs.map((r) => [String(r.seed), String(r.bestEpoch), r.valQwk?.toFixed(3) ?? 'n/a', r.testQwk?.toFixed(3) ?? 'n/a']),
    });
  }
  chartIf(mdl, 'Training curves', modelDir, MODEL_FILES.curves);
  return mdl;
}

/** The last: code, data, config and weights hashes, and package versions. */
export async function traceabilitySection(inp: ReportInputs): Promise<ReportSection> {
  const { meta, modelDir } = inp;
  const trace = section('traceability', 'Traceability');
  const prov = provenanceTags();
  trace.facts.push(
    ['Git commit', prov['mlflow.source.git.commit'] ?? 'not a git checkout'],
    ['Working tree dirty', prov['gradelab.git.dirty'] ?? 'unknown'],
    ['gradelab', prov['gradelab.version']],
    ['Node', prov['gradelab.node']],
    ['Training run', meta.runId ?? 'not tracked'],
    ['Config SHA-256', meta.configHash],
    ['Dataset SHA-256 (tile table and settings; the manifest hash for models from before 0.2)', meta.datasetHash],
    [
      'Weights SHA-256',
      meta.weightsSha256 ?? (await hashIfThere(modelFile(modelDir, 'weights'), 'MISSING (no weights file in the model folder)')),
    ],
  );
  const f = meta.importedFeatures;
  trace.facts.push([
    'model.onnx SHA-256 (the inference artifact)',
    await hashIfThere(
      modelFile(modelDir, 'onnx'),
      f ? `none: a head on ${f.tool} features "${f.name}" scores cached features` : 'MISSING (gradelab export --model DIR writes it)',
    ),
  ]);
  if (f) trace.facts.push(['Imported features', `${f.tool} "${f.name}", ${f.dim} per tile, files SHA-256 ${f.sha256}`]);
  if (meta.encoder) trace.facts.push(['Frozen encoder', `${meta.encoder.onnx}, SHA-256 ${meta.encoder.sha256}`]);
  for (const [k, v] of Object.entries(prov).filter(([k]) => k.startsWith('gradelab.pkg.')))
    trace.facts.push([k.replace('gradelab.pkg.', 'package '), v]);
  return trace;
}

const hashIfThere = async (path: string, otherwise: string) => (existsSync(path) ? sha256File(path) : otherwise);
