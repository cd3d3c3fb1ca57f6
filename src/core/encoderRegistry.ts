import { ConfigError } from './errors.ts';
import type { EncoderSpec } from './modelMeta.ts';

/**
 * What gradelab needs to know to use a pathology foundation model's ONNX export: the input it takes,
 * the normalisation applied before it, the resolution it was trained at, the width of its embedding and
 * which output that embedding is. Facts as TRIDENT (mahmoodlab/TRIDENT, patch_encoder_models/load.py)
 * and the model cards state them; gradelab never downloads weights.
 */
export interface EncoderEntry {
  name: string;
  title: string;
  architecture: string;
  inputSize: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** Microns per pixel of the tiles it was trained on (20x: 0.5). */
  mpp: number;
  /** The tile TRIDENT cuts at that resolution before resizing to the input (px). */
  tileSize: number;
  dim: number;
  /** Which tokens make the embedding: the class token, or the class token joined to the mean of the patch tokens. */
  output: 'class token' | 'class token + mean patch token' | 'image projection';
  licence: string;
  gated: boolean;
  source: string;
}

const IMAGENET = { mean: [0.485, 0.456, 0.406] as [number, number, number], std: [0.229, 0.224, 0.225] as [number, number, number] };

export const ENCODERS: readonly EncoderEntry[] = [
  {
    name: 'uni',
    title: 'UNI',
    architecture: 'ViT-L/16',
    inputSize: 224,
    ...IMAGENET,
    mpp: 0.5,
    tileSize: 256,
    dim: 1024,
    output: 'class token',
    licence: 'CC-BY-NC-ND-4.0',
    gated: true,
    source: 'https://huggingface.co/MahmoodLab/UNI',
  },
  {
    name: 'uni2-h',
    title: 'UNI2-h',
    architecture: 'ViT-H/14, 8 register tokens',
    inputSize: 224,
    ...IMAGENET,
    mpp: 0.5,
    tileSize: 256,
    dim: 1536,
    output: 'class token',
    licence: 'CC-BY-NC-ND-4.0',
    gated: true,
    source: 'https://huggingface.co/MahmoodLab/UNI2-h',
  },
  {
    name: 'conch-v1.5',
    title: 'CONCH v1.5',
    architecture: 'ViT-L/16 (vision tower)',
    inputSize: 448,
    ...IMAGENET,
    mpp: 0.5,
    tileSize: 512,
    dim: 768,
    output: 'image projection',
    licence: 'CC-BY-NC-ND-4.0',
    gated: true,
    source: 'https://huggingface.co/MahmoodLab/conchv1_5',
  },
  {
    name: 'virchow',
    title: 'Virchow',
    architecture: 'ViT-H/14',
    inputSize: 224,
    ...IMAGENET,
    mpp: 0.5,
    tileSize: 224,
    dim: 2560,
    output: 'class token + mean patch token',
    licence: 'Apache-2.0',
    gated: true,
    source: 'https://huggingface.co/paige-ai/Virchow',
  },
  {
    name: 'virchow2',
    title: 'Virchow2',
    architecture: 'ViT-H/14, 4 register tokens',
    inputSize: 224,
    ...IMAGENET,
    mpp: 0.5,
    tileSize: 224,
    dim: 2560,
    output: 'class token + mean patch token',
    licence: 'CC-BY-NC-ND-4.0',
    gated: true,
    source: 'https://huggingface.co/paige-ai/Virchow2',
  },
  {
    name: 'h-optimus-0',
    title: 'H-optimus-0',
    architecture: 'ViT-g/14, 4 register tokens',
    inputSize: 224,
    mean: [0.707223, 0.578729, 0.703617],
    std: [0.211883, 0.230117, 0.177517],
    mpp: 0.5,
    tileSize: 224,
    dim: 1536,
    output: 'class token',
    licence: 'Apache-2.0',
    gated: false,
    source: 'https://huggingface.co/bioptimus/H-optimus-0',
  },
  {
    name: 'h-optimus-1',
    title: 'H-optimus-1',
    architecture: 'ViT-g/14, 4 register tokens',
    inputSize: 224,
    mean: [0.707223, 0.578729, 0.703617],
    std: [0.211883, 0.230117, 0.177517],
    mpp: 0.5,
    tileSize: 224,
    dim: 1536,
    output: 'class token',
    licence: 'see the model card',
    gated: true,
    source: 'https://huggingface.co/bioptimus/H-optimus-1',
  },
  {
    name: 'hibou-l',
    title: 'Hibou-L',
    architecture: 'ViT-L/14 (DINOv2)',
    inputSize: 224,
    mean: [0.7068, 0.5755, 0.722],
    std: [0.195, 0.2316, 0.1816],
    mpp: 0.5,
    tileSize: 224,
    dim: 1024,
    output: 'class token',
    licence: 'Apache-2.0',
    gated: false,
    source: 'https://huggingface.co/histai/hibou-L',
  },
  {
    name: 'prov-gigapath',
    title: 'Prov-GigaPath (tile encoder)',
    architecture: 'ViT-g/14',
    inputSize: 224,
    ...IMAGENET,
    mpp: 0.5,
    tileSize: 256,
    dim: 1536,
    output: 'class token',
    licence: 'Apache-2.0',
    gated: true,
    source: 'https://huggingface.co/prov-gigapath/prov-gigapath',
  },
  {
    name: 'phikon',
    title: 'Phikon',
    architecture: 'ViT-B/16 (iBOT)',
    inputSize: 224,
    ...IMAGENET,
    mpp: 0.5,
    tileSize: 224,
    dim: 768,
    output: 'class token',
    licence: 'Owkin non-commercial',
    gated: false,
    source: 'https://huggingface.co/owkin/phikon',
  },
  {
    name: 'phikon-v2',
    title: 'Phikon-v2',
    architecture: 'ViT-L/16 (DINOv2)',
    inputSize: 224,
    ...IMAGENET,
    mpp: 0.5,
    tileSize: 224,
    dim: 1024,
    output: 'class token',
    licence: 'Owkin non-commercial',
    gated: false,
    source: 'https://huggingface.co/owkin/phikon-v2',
  },
];

/** A registry entry by name; an unknown name is one line listing the known ones. */
export function encoderEntry(name: string): EncoderEntry {
  const found = ENCODERS.find((e) => e.name === name);
  if (!found) throw new ConfigError(`unknown encoder "${name}"; known: ${ENCODERS.map((e) => e.name).join(', ')} (gradelab encoders list)`);
  return found;
}

/**
 * The encoder spec of a registry entry's ONNX export: input size, normalisation and resolution filled in
 * from the entry, so an experiment names the model and the file, nothing else.
 */
export function registryEncoderSpec(name: string, onnx: string): { spec: EncoderSpec; entry: EncoderEntry } {
  const entry = encoderEntry(name);
  return { entry, spec: { onnx, inputSize: entry.inputSize, mean: [...entry.mean], std: [...entry.std], mpp: entry.mpp } };
}
