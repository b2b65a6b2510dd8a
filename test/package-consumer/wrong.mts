// Must NOT type-check: proves the declarations are really read.
import { createQEFlashAttention } from '@agentic-qe/v3/flash-attention';
await createQEFlashAttention('no-such-workload');
