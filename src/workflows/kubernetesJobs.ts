import { stringify } from 'yaml';
import type { ClusterJobPlan } from './clusterJobs.ts';

/** Where the pods run: the image (gradelab installed, `npx gradelab` works in workingDir) and the shared volume. */
export interface KubernetesOptions {
  image: string;
  /** The PersistentVolumeClaim every pod mounts (a ReadWriteMany volume: the tasks share one output folder). */
  pvc: string;
  mountPath: string;
  workingDir: string;
  /** Requests per pod (Kubernetes quantities, e.g. "8" and "16Gi"). */
  cpu?: string;
  memory?: string;
  /** Job name; the finish is NAME-finish. */
  name: string;
  backoffLimit?: number;
}

function podSpec(o: KubernetesOptions, container: string, lines: readonly string[]) {
  return {
    restartPolicy: 'Never',
    containers: [
      {
        name: container,
        image: o.image,
        workingDir: o.workingDir,
        command: ['/bin/sh', '-c'],
        args: [['set -eu', ...lines].join('\n')],
        ...(o.cpu || o.memory
          ? { resources: { requests: { ...(o.cpu ? { cpu: o.cpu } : {}), ...(o.memory ? { memory: o.memory } : {}) } } }
          : {}),
        volumeMounts: [{ name: 'data', mountPath: o.mountPath }],
      },
    ],
    volumes: [{ name: 'data', persistentVolumeClaim: { claimName: o.pvc } }],
  };
}

/**
 * The plan as two batch/v1 Jobs: an Indexed Job of N pods (task I = JOB_COMPLETION_INDEX + 1, the same
 * shell lines a SLURM array task runs) and the finish, to apply once the first has completed (Kubernetes
 * has no dependency between Jobs: `kubectl wait --for=condition=complete job/NAME` first). Plain objects,
 * validated by the tests against Kubernetes' own JSON schema for batch/v1 Job.
 */
export function kubernetesJobs(plan: ClusterJobPlan, o: KubernetesOptions): [Record<string, unknown>, Record<string, unknown>] {
  const array = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: o.name,
      labels: { 'app.kubernetes.io/name': 'gradelab', 'gradelab/command': plan.command, 'gradelab/role': 'tasks' },
    },
    spec: {
      completionMode: 'Indexed',
      completions: plan.tasks,
      parallelism: plan.tasks,
      backoffLimit: o.backoffLimit ?? 3,
      template: { spec: podSpec(o, plan.command, ['I=$((JOB_COMPLETION_INDEX + 1))', ...plan.taskLines]) },
    },
  };
  const finish = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: `${o.name}-finish`,
      labels: { 'app.kubernetes.io/name': 'gradelab', 'gradelab/command': plan.command, 'gradelab/role': 'finish' },
    },
    spec: { backoffLimit: 0, template: { spec: podSpec(o, `${plan.command}-finish`, plan.finishLines) } },
  };
  return [array, finish];
}

/** The two Jobs as one YAML file with a header saying how to run them. */
export function kubernetesYaml(plan: ClusterJobPlan, o: KubernetesOptions, comment: string): string {
  const [array, finish] = kubernetesJobs(plan, o);
  const header = [
    ...comment
      .trim()
      .split('\n')
      .map((l) => `# ${l}`.trimEnd()),
    `# Made by gradelab kubernetes ${plan.command} --tasks ${plan.tasks} (the plan a SLURM array runs) for: ${plan.args.join(' ')}`,
    '# Run it as:',
    '#   kubectl apply -f THIS_FILE -l gradelab/role=tasks',
    `#   kubectl wait --for=condition=complete --timeout=24h job/${o.name}`,
    '#   kubectl apply -f THIS_FILE -l gradelab/role=finish',
  ];
  return `${header.join('\n')}\n${stringify(array, { lineWidth: 0 })}---\n${stringify(finish, { lineWidth: 0 })}`;
}
