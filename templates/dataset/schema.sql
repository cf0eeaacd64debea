-- Dataset pack: a canonical food library for the health planner. Foods are identified by stable
-- ids so that meal plans and logs written against one version keep working in the next.
-- Amounts are per 100 g of the food as eaten (edible portion); servings convert them for display.
-- One data file per table: data/categories.csv, data/foods.jsonl, data/nutrients.csv,
-- data/food_nutrients.csv.

CREATE TABLE categories (
  id       TEXT    NOT NULL PRIMARY KEY CHECK (id GLOB '[a-z]*' AND id NOT GLOB '*[^a-z0-9_]*'),
  name     TEXT    NOT NULL CHECK (length(trim(name)) > 0),
  -- Order of the category list in the app (0 first).
  position INTEGER NOT NULL UNIQUE CHECK (position >= 0)
) STRICT;

CREATE TABLE foods (
  id            TEXT NOT NULL PRIMARY KEY CHECK (id GLOB '[a-z]*' AND id NOT GLOB '*[^a-z0-9_]*'),
  name          TEXT NOT NULL CHECK (length(trim(name)) > 0),
  category_id   TEXT NOT NULL REFERENCES categories (id),
  -- Preparation or variety details; NULL when the name says it all.
  description   TEXT          CHECK (description IS NULL OR length(trim(description)) > 0),
  serving_g     REAL NOT NULL CHECK (serving_g > 0 AND serving_g <= 2000),
  serving_label TEXT NOT NULL CHECK (length(trim(serving_label)) > 0),
  -- Per 100 g. Energy cannot exceed 900 kcal (pure fat).
  kcal          REAL NOT NULL CHECK (kcal BETWEEN 0 AND 900),
  protein_g     REAL NOT NULL CHECK (protein_g BETWEEN 0 AND 100),
  fat_g         REAL NOT NULL CHECK (fat_g BETWEEN 0 AND 100),
  -- Total carbohydrate by difference; includes fibre and sugars.
  carbs_g       REAL NOT NULL CHECK (carbs_g BETWEEN 0 AND 100),
  -- NULL means "not measured", which the app shows differently from 0. Fibre and sugars are
  -- parts of carbs_g, but are analysed separately from it, so 0.5 g of disagreement is allowed
  -- (USDA lists whole milk with 4.80 g carbohydrate and 5.05 g sugars).
  fiber_g       REAL          CHECK (fiber_g IS NULL OR fiber_g BETWEEN 0 AND carbs_g + 0.5),
  sugars_g      REAL          CHECK (sugars_g IS NULL OR sugars_g BETWEEN 0 AND carbs_g + 0.5),
  sodium_mg     REAL          CHECK (sodium_mg IS NULL OR sodium_mg BETWEEN 0 AND 100000),
  -- 100 g of food cannot hold more than 100 g of macronutrients (0.5 g of rounding allowed).
  CHECK (protein_g + fat_g + carbs_g <= 100.5)
) STRICT;

-- Optional: further nutrients, in long form so a food lists only what was measured.
CREATE TABLE nutrients (
  id       TEXT    NOT NULL PRIMARY KEY CHECK (id GLOB '[a-z]*' AND id NOT GLOB '*[^a-z0-9_]*'),
  name     TEXT    NOT NULL CHECK (length(trim(name)) > 0),
  unit     TEXT    NOT NULL CHECK (unit IN ('g', 'mg', 'µg', 'IU')),
  position INTEGER NOT NULL UNIQUE CHECK (position >= 0)
) STRICT;

CREATE TABLE food_nutrients (
  food_id     TEXT NOT NULL REFERENCES foods (id),
  nutrient_id TEXT NOT NULL REFERENCES nutrients (id),
  -- Per 100 g, in nutrients.unit.
  amount      REAL NOT NULL CHECK (amount >= 0),
  PRIMARY KEY (food_id, nutrient_id)
) STRICT, WITHOUT ROWID;

-- Indexes (applied by `iqp build` after the data is loaded).
-- The food picker lists a category's foods by name.
CREATE INDEX foods_by_category ON foods (category_id, name);
-- "Foods rich in potassium": rank foods by one nutrient.
CREATE INDEX food_nutrients_by_amount ON food_nutrients (nutrient_id, amount DESC);
