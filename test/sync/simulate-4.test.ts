import { simulatorSeeds } from './simulate.js';

simulatorSeeds(4);
