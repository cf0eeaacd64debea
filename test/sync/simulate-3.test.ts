import { simulatorSeeds } from './simulate.js';

simulatorSeeds(3);
