//! Small builders shared by the migrations.

use sea_orm_migration::{prelude::*, schema::*};

/// `created_at` and `updated_at`, which every table has.
pub fn timestamps(table: &mut TableCreateStatement) -> &mut TableCreateStatement {
    table
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone("updated_at"))
}

pub fn index(name: &str, table: &str, columns: &[&'static str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(Alias::new(table));
    for column in columns {
        index.col(Alias::new(*column));
    }
    index.to_owned()
}

/// A foreign key from `table.column` to `target.id` that goes with its target.
pub fn cascade(table: &str, column: &str, target: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(Alias::new(table), Alias::new(column))
        .to(Alias::new(target), Alias::new("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}
